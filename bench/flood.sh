#!/usr/bin/env bash
# NFLOG loss under a SYN flood: portknockd against a bare NFLOG reader.
#
#   sudo bench/flood.sh
#
# In a network namespace of its own, one nftables rule counts every packet
# to the knock ports (7000, 8000 tcp; 9000 udp) and logs it to NFLOG group
# 5, read by portknockd, and to group 6, read by bench/cmd/nflogcount, a
# reader with portknockd's socket settings that only counts. Both see the
# same packets at the same time and share the CPUs with the flood, so
# neither is favoured. bench/cmd/synflood sends TCP SYNs, each from a
# source of its own (127.x.y.z, x ≥ 1), to 7000 and 8000 as fast as it
# can, at most COUNT packets and TIME seconds. During the flood, the portknock client
# knocks once from 127.0.0.1 and synflood sends KNOCKS more sequences from
# 127.0.1.N; the door's command records who got in.
#
# Loss of a reader = packets the rule counted − messages it received.
#
# Settings (environment):
#   COUNT=2000000  TIME=30   bounds of the flood (packets, seconds)
#   WORKERS=$(nproc)         sending threads
#   RATE=0                   total SYNs per second, 0 = as fast as possible
#   KNOCKS=20                real knock sequences sent by synflood
#   RUNS=3                   floods in a row, then a summary of the losses
#   MODE=both                both: one flood, both readers at once;
#                            seq: one flood per reader, each alone, the
#                            rule logging only to that reader's group
#   BARE_QTHRESH=1           the bare reader's fixed queue threshold and
#   BARE_TIMEOUT=0           flush timeout (portknockd switches to 64 and
#                            10ms by itself under a flood)
#
# All traffic stays on the namespace's loopback; the namespace is removed on
# exit. Needs root (network namespace, nftables, NFLOG, raw socket) and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
count=${COUNT:-2000000}
secs=${TIME:-30}
workers=${WORKERS:-$(nproc)}
rate=${RATE:-0}
knocks=${KNOCKS:-20}
mode=${MODE:-both}
runs=${RUNS:-3}
bare_qthresh=${BARE_QTHRESH:-1}
bare_timeout=${BARE_TIMEOUT:-0}
if [[ $EUID -ne 0 ]]; then
	echo "bench/flood.sh needs root: it creates a network namespace with nftables rules, reads NFLOG and sends from a raw socket (sudo bench/flood.sh)" >&2
	exit 1
fi
command -v go >/dev/null || { echo "go is not in PATH (sudo resets it: sudo env PATH=\"\$PATH\" bench/flood.sh)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nft (nftables) is needed" >&2; exit 1; }
[[ $mode == both || $mode == seq ]] || { echo "MODE must be both or seq" >&2; exit 2; }

tmp=$(mktemp -d)
ns=pkbench-flood-$$
cleanup() {
	# Only what this script started runs in its namespace.
	for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/" ./cmd/portknockd ./cmd/portknock ./bench/cmd/synflood ./bench/cmd/nflogcount

ip netns add "$ns"
ip -n "$ns" link set lo up
# Background jobs use ip netns exec directly, so that $! is the process
# itself (ip execs it) and not a subshell.
nsexec() { ip netns exec "$ns" "$@"; }

mkdir "$tmp/state"
cat >"$tmp/flood.toml" <<EOF
[daemon]
state_dir = "$tmp/state"

[[input]]
type   = "nflog"
groups = [5]
prefix = "knock"

[[door]]
name          = "ssh"
sequence      = ["7000/tcp", "8000/tcp", "9000/udp"]
seq_timeout   = "5s"
start_command = "echo %IP% >> $tmp/opened"
EOF

# rules GROUP...: the knock rule, counting and then logging to each group.
rules() {
	local logs="" g
	for g in "$@"; do logs+=" log group $g prefix \"knock\""; done
	nsexec nft -f - <<EOF
table inet pkbench
delete table inet pkbench
table inet pkbench {
	counter knocks { }
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport { 7000, 8000 } counter name knocks$logs drop
		udp dport 9000 counter name knocks$logs drop
	}
}
EOF
}

# wait_for FILE PATTERN: until a reader says it is reading, at most 10 s.
wait_for() {
	local i
	for i in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

# per CPUSECONDS N: microseconds per item.
per() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", n ? c * 1e6 / n : 0 }'; }

# pct PART WHOLE
pct() { awk -v p="$1" -v w="$2" 'BEGIN { printf "%.2f%%", w ? 100 * p / w : 0 }'; }
# field LINE KEY: the value of KEY=value in a log line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# flood NAME GROUP...: one flood with a reader on each group (5: portknockd,
# 6: the bare reader), then the report.
flood() {
	local name=$1; shift
	local pk="" pkd="" bare="" g
	rules "$@"
	rm -f "$tmp/opened"
	for g in "$@"; do
		if [[ $g == 5 ]]; then
			# timeout bounds the daemon's life even if this script is
			# killed outright; it passes our SIGTERM on.
			ip netns exec "$ns" timeout $((secs + 60)) "$tmp/portknockd" -c "$tmp/flood.toml" 2>"$tmp/$name.pk.log" &
			pk=$!
			wait_for "$tmp/$name.pk.log" 'msg="reading NFLOG group"'
			pkd=$(pgrep -P "$pk")
		else
			ip netns exec "$ns" "$tmp/nflogcount" -group "$g" -qthresh "$bare_qthresh" -timeout "$bare_timeout" -max-time $((secs + 60))s >"$tmp/$name.bare.out" 2>&1 &
			bare=$!
			wait_for "$tmp/$name.bare.out" '^bound'
		fi
	done
	local kflag=0
	[[ -n $pk ]] && kflag=$knocks
	steal_start
	local flood_start
	flood_start=$(date +%s.%N)
	ip netns exec "$ns" "$tmp/synflood" -count "$count" -time "${secs}s" -workers "$workers" -rate "$rate" \
		-knocks "$kflag" >"$tmp/$name.flood.out" &
	local fl=$! client_at=""
	if [[ -n $pk ]]; then
		# The real client, once, from 127.0.0.1 (never a flood source).
		sleep 2
		client_at=$(date +%s.%N)
		nsexec "$tmp/portknock" 127.0.0.1 7000 8000 9000:udp || echo "portknock client failed" >&2
	fi
	wait "$fl"
	sleep 2 # let the readers empty their sockets
	local logged
	logged=$(nsexec nft list counter inet pkbench knocks | awk '$1 == "packets" { print $2 }')
	local pk_cpu="" bare_cpu=""
	[[ -n $pk ]] && { pk_cpu=$(cpu_seconds "$pkd"); kill -TERM "$pk"; wait "$pk" || true; }
	[[ -n $bare ]] && { bare_cpu=$(cpu_seconds "$bare"); kill -TERM "$bare"; wait "$bare" || true; }

	steal_report >"$tmp/$name.steal"
	echo "-- $(grep '^flood' "$tmp/$name.flood.out")"
	echo "   kernel logged $logged packets (counter on the log rule), to group(s) $*"
	printf '   %-30s %10s %10s %8s\n' reader received lost loss
	if [[ -n $bare ]]; then
		local b n
		b=$(grep '^bare totals' "$tmp/$name.bare.out")
		n=$(field "$b" packets)
		r_bare=$(pct $((logged - n)) "$logged")
		r_rate=$(sed -n 's/^flood .* rate=\([^ ]*\).*/\1/p' "$tmp/$name.flood.out")
		printf '   %-30s %10d %10d %8s   kernel_drops=%s overruns=%s cpu=%ss (%s µs/message)\n' "bare reader, qthresh $bare_qthresh" "$n" $((logged - n)) \
			"$(pct $((logged - n)) "$logged")" "$(field "$b" kernel_drops)" "$(field "$b" overruns)" "$bare_cpu" "$(per "$bare_cpu" "$n")"
	fi
	if [[ -n $pk ]]; then
		local t n e to opened clients flood_secs
		t=$(grep 'msg="input totals"' "$tmp/$name.pk.log")
		n=$(field "$t" packets)
		e=$(field "$t" events)
		r_pk=$(pct $((logged - n)) "$logged")
		r_pkev=$(pct $((logged - e)) "$logged")
		printf '   %-30s %10d %10d %8s   kernel_drops=%s overruns=%s cpu=%ss (%s µs/message)\n' "portknockd, messages" "$n" $((logged - n)) \
			"$(pct $((logged - n)) "$logged")" "$(field "$t" kernel_drops)" "$(field "$t" overruns)" "$pk_cpu" "$(per "$pk_cpu" "$n")"
		printf '   %-30s %10d %10d %8s   queue_overflow=%s\n' "portknockd, events matched" "$e" $((logged - e)) \
			"$(pct $((logged - e)) "$logged")" "$(field "$t" queue_overflow)"
		to=$(grep -c 'msg="knock timed out"' "$tmp/$name.pk.log" || true)
		echo "   portknockd logged $to \"knock timed out\" lines ($(wc -c <"$tmp/$name.pk.log") bytes of log)"
		grep -E 'msg="(matcher|command) totals"' "$tmp/$name.pk.log" | sed 's/^/   /'
		grep -E 'msg="NFLOG message rate' "$tmp/$name.pk.log" | sed 's/^/   /'
	fi
	cat "$tmp/$name.steal"
	if [[ -n $pk ]]; then
		touch "$tmp/opened"
		local when="during"
		flood_secs=$(sed -n 's/^flood .* seconds=\([^ ]*\).*/\1/p' "$tmp/$name.flood.out")
		awk -v c="$client_at" -v s="$flood_start" -v d="$flood_secs" 'BEGIN { exit !(c - s > d) }' && when="AFTER"
		if grep -qx 127.0.0.1 "$tmp/opened"; then clients=opened; else clients="did NOT open"; fi
		echo "   portknock client knock from 127.0.0.1, 2 s in ($when the flood): $clients"
		opened=$(grep -c '^127\.0\.1\.' "$tmp/opened" || true)
		r_knocks="$opened/$(grep -c '^knock ' "$tmp/$name.flood.out" || true)"
		r_client=no
		[[ $clients == opened ]] && r_client=yes
		echo "   synflood knocks during the flood: $opened of ${r_knocks#*/} opened"
	fi
}

busy_check
echo "$(nproc) CPUs, $(uname -r); flood: at most $count SYNs and $secs s, $workers threads, rate ${rate/#0/unlimited}"
# One line per run for the summary: loss varies a lot from run to run when
# the CPUs are saturated, so one run says little.
summary=$tmp/summary
for run in $(seq "$runs"); do
	r_bare="" r_pk="" r_pkev="" r_rate="" r_client="" r_knocks=""
	(( runs > 1 )) && echo "== run $run of $runs"
	if [[ $mode == both ]]; then
		flood both 5 6
	else
		flood portknockd 5
		flood bare 6
	fi
	echo "$run ${r_rate:-?} ${r_bare%\%} ${r_pk%\%} ${r_pkev%\%} $r_client $r_knocks" >>"$summary"
done
if (( runs > 1 )); then
	echo
	echo "== summary of $runs runs (loss in %; difference = portknockd messages − bare)"
	# In seq mode the rate shown is that of the bare reader's flood.
	awk 'BEGIN { printf "   %3s %9s %7s %7s %7s %7s  %-7s %s\n", "run", "SYNs/s", "bare", "pkd", "pkd ev", "diff", "client", "knocks" }
	{ d = $4 - $3; sum += d; sb += $3; sp += $4; if (NR == 1 || d > hi) hi = d; if (NR == 1 || d < lo) lo = d
	  printf "   %3d %9s %7.2f %7.2f %7.2f %+7.2f  %-7s %s\n", $1, $2, $3, $4, $5, d, $6, $7 }
	END { printf "   mean loss: bare %.2f%%, portknockd %.2f%%; difference mean %+.2f, min %+.2f, max %+.2f points\n", sb / NR, sp / NR, sum / NR, lo, hi }' "$summary"
fi
