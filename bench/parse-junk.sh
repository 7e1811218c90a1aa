#!/usr/bin/env bash
# Feeds portknockd parse a stream of mixed lines (1,000,000 by default):
# every format's golden lines, cut and mangled copies of them, and random
# bytes, and reports its peak RSS (GNU time, Debian package "time") and
# what it counted. Hostile or broken input must cost CPU, not memory.
#   bench/parse-junk.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/" ./cmd/portknockd
cat textlog/testdata/*/*.txt textlog/testdata/*/*.log textlog/testdata/*/*.json 2>/dev/null >"$tmp/golden"
# Mangled copies: each golden line cut at a random point, with a random
# byte flipped, and as one very long line.
awk 'BEGIN { srand(1) } {
	print
	cut = int(rand() * length($0)); print substr($0, 1, cut)
	p = int(rand() * length($0)) + 1; print substr($0, 1, p - 1) sprintf("%c", int(rand() * 256)) substr($0, p + 1)
	if (NR % 50 == 0) { s = $0; while (length(s) < 6000) s = s " " $0; print s }
}' "$tmp/golden" >"$tmp/mixed"
per=$(( $(wc -l <"$tmp/mixed") + 256 )) # 64 KiB of random bytes is about 256 lines
rounds=$(( lines / per + 1 ))
for ((i = 0; i < rounds; i++)); do
	cat "$tmp/mixed"
	head -c 65536 /dev/urandom
	echo
done >"$tmp/all"
head -n "$lines" "$tmp/all" >"$tmp/input"
echo "input: $(wc -l <"$tmp/input") lines, $(du -m "$tmp/input" | cut -f1) MiB"
start=$(date +%s%N)
/usr/bin/time -f 'peak RSS %M KiB' "$tmp/portknockd" parse <"$tmp/input" >"$tmp/events" 2>"$tmp/err"
end=$(date +%s%N)
tail -n 2 "$tmp/err"
echo "$(wc -l <"$tmp/events") events printed in $(( (end - start) / 1000000 )) ms"
