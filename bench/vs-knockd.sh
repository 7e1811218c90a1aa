#!/usr/bin/env bash
# portknockd against knockd (Debian's knockd package) on the same packets.
#
#   sudo env PATH="$PATH" bench/vs-knockd.sh
#
# In a network namespace of its own, with one door (7000/tcp, 8000/tcp,
# 9000/udp within 5 s, SYNs only) whose command is `echo %IP% > FILE`
# through /bin/sh in both daemons, each daemon in turn, alone:
#
#   1. latency: bench/cmd/knocklat sends N knock sequences one at a time,
#      each from its own 127.1.x.y source, and times from the last knock
#      packet to the command's write (a FIFO);
#   2. floods: for each flood in FLOODS, a fresh daemon, then
#      bench/cmd/synflood sends COUNT SYNs at RATE per second (0: as fast as
#      it can) to 7000 and 8000, each from its own spoofed source 127.x.y.z
#      (x >= 1; distinct for the first 16.7 million), and, during the flood,
#      KNOCKS real knock sequences from 127.0.1.1, 127.0.1.2, ...; the
#      command's file says which opened. The daemon's CPU time over the
#      flood is divided by the SYNs sent, and its peak resident memory
#      (VmHWM) is read at the end.
#
# The same nftables ruleset is loaded for both: it logs the knock ports to
# NFLOG group 5, which portknockd reads, and drops them; knockd sniffs the
# namespace's loopback with libpcap (-i lo), which sees packets before the
# firewall does. Each daemon runs alone, with default settings.
#
# Settings (environment):
#   N=200                    knock sequences timed for latency
#   KNOCKS=10                real knock sequences sent during each flood
#   FLOODS="200000:50000 1000000:100000 1000000:0"
#                            floods as COUNT:RATE (RATE 0: unlimited)
#   WORKERS=$(nproc)         synflood's sending threads
#   ONLY=                    portknockd or knockd: run only that one
#
# All traffic stays on the namespace's loopback; the namespace is removed on
# exit. Needs root (network namespace, nftables, NFLOG, raw socket, pcap),
# Go, nft and knockd (apt-get install knockd).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${N:-200}
knocks=${KNOCKS:-10}
floods=${FLOODS:-"200000:50000 1000000:100000 1000000:0"}
workers=${WORKERS:-$(nproc)}
only=${ONLY:-}
if [[ $EUID -ne 0 ]]; then
	echo "bench/vs-knockd.sh needs root: it creates a network namespace with nftables rules, reads NFLOG, sniffs with pcap and sends from a raw socket (sudo bench/vs-knockd.sh)" >&2
	exit 1
fi
command -v go >/dev/null || { echo "go is not in PATH (sudo resets it: sudo env PATH=\"\$PATH\" bench/vs-knockd.sh)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nft (nftables) is needed" >&2; exit 1; }
knockd=$(command -v knockd || true)
[[ -n $knockd ]] || { echo "knockd is needed: apt-get install knockd" >&2; exit 1; }
[[ -z $only || $only == portknockd || $only == knockd ]] || { echo "ONLY must be portknockd or knockd" >&2; exit 2; }
(( knocks >= 1 && knocks <= 250 )) || { echo "KNOCKS must be 1-250" >&2; exit 2; }

tmp=$(mktemp -d)
ns=pkbench-vs-$$
cleanup() {
	# Only what this script started runs in its namespace.
	for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/" ./cmd/portknockd ./bench/cmd/synflood ./bench/cmd/knocklat

ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" nft -f - <<'EOF'
table inet pkbench {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport { 7000, 8000 } log group 5 prefix "knock" drop
		udp dport 9000 log group 5 prefix "knock" drop
	}
}
EOF
mkfifo "$tmp/cmd.fifo"
mkdir "$tmp/state"

# config DAEMON TARGET: DAEMON's configuration file, its door's command
# writing the knocker's address to TARGET (">> FILE" or "> FIFO").
config() {
	local f=$tmp/$1.conf
	if [[ $1 == portknockd ]]; then
		rm -rf "$tmp/state"/*
		cat >"$f" <<EOF
[daemon]
state_dir = "$tmp/state"

[[input]]
type   = "nflog"
groups = [5]
prefix = "knock"

[[door]]
name          = "door"
sequence      = ["7000/tcp", "8000/tcp", "9000/udp"]
seq_timeout   = "5s"
tcpflags      = "syn"
start_command = "echo %IP% $2"
EOF
	else
		cat >"$f" <<EOF
[options]
	logfile   = $tmp/knockd.log
	interface = lo

[door]
	sequence    = 7000,8000,9000:udp
	seq_timeout = 5
	tcpflags    = syn
	command     = echo %IP% $2
EOF
	fi
	echo "$f"
}

# start DAEMON TARGET: start DAEMON in the namespace, wait until it reads,
# and set pid to the daemon's own process id. timeout bounds its life even
# if this script is killed outright.
start() {
	local conf log ready
	conf=$(config "$1" "$2")
	log=$tmp/$1.out
	# Emptied here, not by the redirection below, which the background
	# job makes later: the wait for the ready line must not find the
	# previous daemon's.
	: >"$log"
	if [[ $1 == portknockd ]]; then
		ip netns exec "$ns" timeout 900 "$tmp/portknockd" -c "$conf" >"$log" 2>&1 &
		ready='msg="reading NFLOG group"'
	else
		: >"$tmp/knockd.log"
		ip netns exec "$ns" timeout 900 "$knockd" -c "$conf" -i lo >"$log" 2>&1 &
		log=$tmp/knockd.log
		ready='listening on lo'
	fi
	wrapper=$!
	local i
	for i in $(seq 100); do
		grep -q "$ready" "$log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "$ready" "$log" || { echo "$1 did not start:" >&2; cat "$tmp/$1.out" >&2; exit 1; }
	pid=$(pgrep -P "$wrapper" || true)
	[[ -n $pid ]] || { echo "$1: no daemon process under timeout (pid $wrapper)" >&2; exit 1; }
}

# stop: stop the daemon started last.
stop() {
	kill -TERM "$wrapper" 2>/dev/null || true
	wait "$wrapper" 2>/dev/null || true
}

# hwm: the daemon's peak resident memory in MiB.
hwm() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }

# latency DAEMON: knock → command p50 and p99 over N knocks.
latency() {
	start "$1" "> $tmp/cmd.fifo"
	steal_start
	local out
	if ! out=$(ip netns exec "$ns" timeout 900 "$tmp/knocklat" -external -fifo "$tmp/cmd.fifo" -n "$n" -warmup 10 -timeout 5s 2>&1); then
		echo "$out" >&2
		echo "$1: some knocks got no answer" >&2
	fi
	stop
	echo "$out" | sed 's/^/   /'
	echo "   CPU steal during the run: $(steal_pct)"
	local row
	row=$(grep '^start command running' <<<"$out" || true)
	read -r p50 p99 <<<"$(awk '{ print $(NF-3), $(NF-1) }' <<<"$row")"
	res["$1,lat"]="p50 ${p50:-?}, p99 ${p99:-?}"
}

# flood DAEMON COUNT RATE: knocks opened during the flood, CPU per SYN,
# peak RSS.
flood() {
	local d=$1 count=$2 rate=$3
	: >"$tmp/opened"
	start "$d" ">> $tmp/opened"
	steal_start
	local c0 c1 c2 sent secs frate sentk opened i
	c0=$(cpu_seconds "$pid")
	ip netns exec "$ns" timeout 300 "$tmp/synflood" -count "$count" -rate "$rate" -workers "$workers" -time 60s \
		-knocks "$knocks" -knock-start 500ms -knock-every 300ms >"$tmp/flood.out"
	c1=$(cpu_seconds "$pid")
	# Let the daemon work through what it has buffered: until every knock
	# opened or it is idle for a second, at most 30 s.
	for i in $(seq 30); do
		opened=$(grep -c '^127\.0\.1\.' "$tmp/opened" || true)
		(( opened >= knocks )) && break
		sleep 1
		c2=$(cpu_seconds "$pid")
		[[ $c2 == "$c1" ]] && break
		c1=$c2
	done
	opened=$(grep -c '^127\.0\.1\.' "$tmp/opened" || true)
	sentk=$(grep -c '^knock .* at [0-9.]*s$' "$tmp/flood.out" || true)
	local mem
	mem=$(hwm)
	stop
	read -r sent secs frate <<<"$(sed -n 's/^flood sent=\([0-9]*\) seconds=\([0-9.]*\) rate=\([0-9]*\).*/\1 \2 \3/p' "$tmp/flood.out")"
	local per
	per=$(awk -v a="$c0" -v b="$c1" -v n="$sent" 'BEGIN { printf "%.1f", n ? (b - a) * 1e6 / n : 0 }')
	echo "   $d: $sent SYNs in ${secs}s (${frate}/s): $opened of $sentk knocks opened; CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')s (${per} µs per SYN); peak RSS ${mem} MiB; CPU steal $(steal_pct)"
	if [[ $d == portknockd ]]; then
		# Where the knocks that did not open were lost: in the kernel
		# (the socket was full) or in the daemon's queue to the matcher.
		sed -n 's/.*msg="input totals".* packets=\([0-9]*\).* queue_overflow=\([0-9]*\) kernel_drops=\([0-9]*\) overruns=\([0-9]*\).*/   received \1 messages; kernel dropped \3 in \4 overruns; queue overflow \2/p' "$tmp/portknockd.out"
		grep -E 'msg="NFLOG message rate' "$tmp/portknockd.out" | sed 's/^/   /'
	fi
	# A flood FLOODS names twice gets every run's figures, in order.
	local k="$d,$count:$rate"
	res[$k]="${res[$k]:+${res[$k]}, }$opened/$sentk"
	res[$k,rate]="${res[$k,rate]:+${res[$k,rate]}, }$frate"
	res[$k,cpu]="${res[$k,cpu]:+${res[$k,cpu]}, }$per"
	res["$d,rss"]=$(awk -v a="${res["$d,rss"]:-0}" -v b="$mem" 'BEGIN { print (b > a) ? b : a }')
}

declare -A res
daemons=(portknockd knockd)
[[ -n $only ]] && daemons=("$only")
busy_check
echo "$(nproc) CPUs, $(uname -r); $("$knockd" --version | head -1); portknockd built from $(git rev-parse --short HEAD 2>/dev/null || echo this tree)"
for d in "${daemons[@]}"; do
	echo
	echo "== $d: last knock → command (sh + echo), $n knocks"
	latency "$d"
done
for f in $floods; do
	for d in "${daemons[@]}"; do
		echo
		echo "== $d: flood of ${f%%:*} SYNs at ${f#*:}/s (0: unlimited), $knocks real knocks during it"
		flood "$d" "${f%%:*}" "${f#*:}"
	done
done

echo
echo "== summary"
printf '| | %s |\n|---|%s\n' "$(IFS='|'; echo "${daemons[*]}" | sed 's/|/ | /g')" "$(printf -- '---|%.0s' "${daemons[@]}")"
row() {
	local label=$1 key=$2 d line="| $1 |"
	for d in "${daemons[@]}"; do line+=" ${res["$d,$key"]:-?} |"; done
	echo "$line"
}
row "last knock → command (sh + echo), $n knocks" lat
distinct=$(printf '%s\n' $floods | awk '!seen[$0]++')
for f in $distinct; do
	rates=""
	for d in "${daemons[@]}"; do rates+="${rates:+, }${res["$d,$f,rate"]:-?}"; done
	row "real knocks opened during ${f%%:*} SYNs at ${f#*:}/s (sent at $rates/s)" "$f"
done
for f in $distinct; do
	row "CPU µs per flood SYN (${f%%:*} at ${f#*:}/s)" "$f,cpu"
done
row "peak RSS, MiB" rss
