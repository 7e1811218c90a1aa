#!/usr/bin/env bash
# Knock → command latency of portknockd reading NFLOG, p50/p90/p99/max.
#
#   sudo bench/latency.sh [N]        N measured knock sequences (default 1000)
#
# In a network namespace of its own, an nftables rule logs the knock ports
# to NFLOG group 5 and drops them; portknockd reads the group, and its door
# runs `echo %IP% > FIFO` through /bin/sh. bench/cmd/knocklat sends the
# sequence 7000/tcp 8000/tcp 9000/udp N times, each from its own 127.1.x.y
# source, one sequence at a time, and times from just before the last knock
# packet to the daemon's log line, to the command's write to the FIFO
# (which includes forking and exec'ing /bin/sh) and to the "opened" line.
# It runs twice: first with --dry-run, where no command runs, so the log
# line's time is not disturbed by a fork competing for the CPUs; then for
# real; and last, with no daemon, a small Go program starts the same command
# the same way, which is what process creation alone costs on this machine.
# SAMPLES=file.csv keeps the second run's samples.
#
# All traffic stays on the namespace's loopback; the namespace is removed on
# exit. Needs root (network namespace, nftables, NFLOG) and Go.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-1000}
if [[ $EUID -ne 0 ]]; then
	echo "bench/latency.sh needs root: it creates a network namespace with nftables rules and reads NFLOG (sudo bench/latency.sh)" >&2
	exit 1
fi
command -v go >/dev/null || { echo "go is not in PATH (sudo resets it: sudo env PATH=\"\$PATH\" bench/latency.sh)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nft (nftables) is needed" >&2; exit 1; }

tmp=$(mktemp -d)
ns=pkbench-lat-$$
cleanup() {
	# Only what this script started runs in its namespace.
	for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/" ./cmd/portknockd ./bench/cmd/knocklat

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

mkdir "$tmp/state"
mkfifo "$tmp/cmd.fifo"
cat >"$tmp/latency.toml" <<EOF
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
start_command = "echo %IP% > $tmp/cmd.fifo"
EOF

busy_check
echo "$(nproc) CPUs, $(uname -r); $n knock sequences per run"
run() {
	steal_start
	# knocklat takes the daemon with it when it ends; timeout bounds both.
	ip netns exec "$ns" timeout 900 "$tmp/knocklat" -daemon "$tmp/portknockd" -config "$tmp/latency.toml" \
		-fifo "$tmp/cmd.fifo" -n "$n" -log "$tmp/portknockd.log" "$@" || {
		echo "--- portknockd log (tail)"; tail -20 "$tmp/portknockd.log"; exit 1
	}
	steal_report
}
echo
echo "== 1. --dry-run: the daemon logs the command instead of running it (NFLOG → matcher → log line)"
run -dry-run
echo
echo "== 2. the door runs its command (adds fork and exec of /bin/sh)"
run ${SAMPLES:+-samples "$SAMPLES"}
echo
echo "== 3. no daemon: a small Go program starts the same command directly (process creation alone)"
steal_start
ip netns exec "$ns" timeout 900 "$tmp/knocklat" -spawn-only -fifo "$tmp/cmd.fifo" -n "$n"
steal_report
