#!/usr/bin/env bash
# Feeds random bytes (1 GiB by default) to portknockd on stdin and reports
# its peak RSS (GNU time, Debian package "time") and how many lines it skipped: junk must
# neither crash the daemon nor grow its memory.
#   bench/junk-stdin.sh [SIZE]     SIZE as for head -c, e.g. 1G, 100M
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1G}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/portknockd
start=$(date +%s%N)
head -c "$size" /dev/urandom |
	/usr/bin/time -f 'peak RSS %M KiB' "$bin/portknockd" -c examples/quickstart.toml 2>"$bin/log" || {
	echo "portknockd failed:"; tail -20 "$bin/log"; exit 1
}
end=$(date +%s%N)
grep -E 'input totals|peak RSS' "$bin/log"
echo "$size of random bytes in $(( (end - start) / 1000000 )) ms"
