#!/bin/sh
# Regenerates testdata/pflog: pcap files with pflog headers written by
# gen/pflog, printed by the real tcpdump in the ways people run it on
# pflog0. Run from the textlog directory: sh testdata/gen/pflog.sh
set -eu
out=testdata/pflog
go run ./testdata/gen/pflog -o "$out"
# TZ pins the wall-clock stamps of the default and -tttt outputs.
export TZ=UTC
print() {
	name=$1
	shift
	tcpdump "$@" -r "$out/upstream.pcap" >"$out/$name" 2>/dev/null
}
print upstream.txt -n -e
print upstream-tt.txt -n -e -tt
print upstream-tttt.txt -n -e -tttt
print upstream-q.txt -n -e -q
tcpdump --version 2>&1 | head -1 >"$out/upstream.version"
