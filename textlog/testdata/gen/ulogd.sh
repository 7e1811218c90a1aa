#!/bin/bash
# Regenerates textlog/testdata/ulogd/ with the real ulogd2: LOGEMU text and
# JSON output for knock packets logged by nftables over NFLOG.
#
# Run as root from anywhere: textlog/testdata/gen/ulogd.sh
# Needs ulogd2 with its JSON plugin (Debian: ulogd2 ulogd2-json), nft, ip.
#
# Everything happens in a private network namespace created here and
# removed on exit: packets go only to 127.0.0.1 and ::1 on that namespace's
# loopback, so nothing leaves the machine or reaches the host's stack.
#
# The rules, all in an inet table in the namespace, log every packet to two
# NFLOG groups (5 for the LOGEMU stack, 6 for the JSON stack):
#   tcp 7000, udp 9000      prefix "knock"       the knocks
#   tcp 7001                no prefix            a rule without a prefix
#   tcp 7003                a prefix with fake "IN= OUT= SRC= DPT=" fields
#   tcp 7002 (output hook)  prefix "knock"       an outbound packet
#   icmp/icmpv6 unreachable prefix "knock"       an ICMP error (udp to 9001)
#   fragments (prerouting)  prefix "knock"       udp 9100, 2000 bytes, MTU 1280
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/../ulogd
plugins=${ULOGD_PLUGINS:-/usr/lib/x86_64-linux-gnu/ulogd}

if [ "$(id -u)" != 0 ]; then
	echo "ulogd.sh: must run as root (network namespace, nftables, NFLOG)" >&2
	exit 1
fi
for p in NFLOG BASE IFINDEX IP2STR PRINTPKT HWHDR LOGEMU JSON; do
	if ! ls "$plugins"/ulogd_*_"$p".so >/dev/null 2>&1; then
		echo "ulogd.sh: plugin $p missing in $plugins (install ulogd2 ulogd2-json)" >&2
		exit 1
	fi
done

ns=pkulogd-$$-$RANDOM
work=$(mktemp -d)
ulogd_pid=
cleanup() {
	if [ -n "$ulogd_pid" ]; then
		kill "$ulogd_pid" 2>/dev/null || true
		wait "$ulogd_pid" 2>/dev/null || true
	fi
	# Whatever still runs in the namespace is this script's: deleting the
	# name alone would leave it running in a namespace nobody can reach.
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
inns() { ip netns exec "$ns" "$@"; }
inns ip link set lo up
# A small MTU on the namespace's loopback makes a 2000-byte datagram leave
# as fragments, so that the log has a first and a non-first fragment.
inns ip link set lo mtu 1280

# Two log statements per rule: one NFLOG group per ulogd stack, since a
# group has one listener.
log() { echo "log group 5 $1 log group 6 $1"; }
inns nft -f - <<EOF
table inet knock {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ip frag-off & 0x3fff != 0 $(log 'prefix "knock"')
		exthdr frag exists $(log 'prefix "knock"')
	}
	chain in {
		type filter hook input priority 0; policy accept;
		tcp dport 7000 $(log 'prefix "knock"') reject with tcp reset
		udp dport 9000 $(log 'prefix "knock"') drop
		tcp dport 7001 $(log '') reject with tcp reset
		tcp dport 7003 $(log 'prefix "IN=x OUT=y SRC=192.0.2.66 DPT=22"') reject with tcp reset
		icmp type destination-unreachable $(log 'prefix "knock"')
		icmpv6 type destination-unreachable $(log 'prefix "knock"')
	}
	chain out {
		type filter hook output priority 0; policy accept;
		tcp dport 7002 $(log 'prefix "knock"')
	}
}
EOF

cat >"$work/ulogd.conf" <<EOF
[global]
logfile="$work/ulogd.log"
loglevel=3
plugin="$plugins/ulogd_inppkt_NFLOG.so"
plugin="$plugins/ulogd_raw2packet_BASE.so"
plugin="$plugins/ulogd_filter_IFINDEX.so"
plugin="$plugins/ulogd_filter_IP2STR.so"
plugin="$plugins/ulogd_filter_PRINTPKT.so"
plugin="$plugins/ulogd_filter_HWHDR.so"
plugin="$plugins/ulogd_output_LOGEMU.so"
plugin="$plugins/ulogd_output_JSON.so"
stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,print1:PRINTPKT,emu1:LOGEMU
stack=log2:NFLOG,base2:BASE,ifi2:IFINDEX,ip2str2:IP2STR,mac2str2:HWHDR,json1:JSON

[log1]
group=5

[log2]
group=6

[emu1]
file="$work/logemu.log"
sync=1

[json1]
file="$work/ulogd.json"
sync=1
EOF

# Not through inns: a function would run in a subshell, and $! would be
# the subshell's pid instead of ulogd's (ip netns exec execs ulogd).
ip netns exec "$ns" ulogd -c "$work/ulogd.conf" &
ulogd_pid=$!

# ulogd is ready when both groups are bound in the namespace.
for _ in $(seq 50); do
	if [ "$(inns cat /proc/net/netfilter/nfnetlink_log 2>/dev/null | wc -l)" -ge 2 ]; then
		break
	fi
	sleep 0.1
done
if [ "$(inns cat /proc/net/netfilter/nfnetlink_log 2>/dev/null | wc -l)" -lt 2 ]; then
	echo "ulogd.sh: ulogd did not bind groups 5 and 6" >&2
	cat "$work/ulogd.log" >&2 || true
	exit 1
fi

# The knocks, one packet each (a rejected connect fails at once). Bash's
# /dev/tcp and /dev/udp open sockets in the namespace; every address is the
# namespace's own loopback.
inns bash -c '
	tcp() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null || true; }
	udp() { timeout 2 bash -c "printf %s \"$3\" >/dev/udp/$1/$2" 2>/dev/null || true; }
	for a in 127.0.0.1 ::1; do
		tcp "$a" 7000
		udp "$a" 9000 knock
		tcp "$a" 7001
		tcp "$a" 7003
		tcp "$a" 7002
		udp "$a" 9001 unreachable
		udp "$a" 9100 "$(printf "%2000s" x)"
	done
'

# 18 packets are logged (9 per address family: the five TCP and UDP knocks,
# two ICMP errors, two fragments); wait for both outputs to have them all.
want=18
for _ in $(seq 50); do
	a=$(wc -l <"$work/logemu.log" 2>/dev/null || echo 0)
	b=$(wc -l <"$work/ulogd.json" 2>/dev/null || echo 0)
	[ "$a" -ge "$want" ] && [ "$b" -ge "$want" ] && break
	sleep 0.1
done
kill "$ulogd_pid"
wait "$ulogd_pid" 2>/dev/null || true
ulogd_pid=
if [ -n "$(ip netns pids "$ns")" ]; then
	echo "ulogd.sh: processes left in $ns after stopping ulogd" >&2
	exit 1
fi

mkdir -p "$out"
cp "$work/logemu.log" "$out/logemu.log"
cp "$work/ulogd.json" "$out/ulogd.json"
if [ "$(wc -l <"$out/logemu.log")" -lt "$want" ] || [ "$(wc -l <"$out/ulogd.json")" -lt "$want" ]; then
	echo "ulogd.sh: fewer than $want records; the outputs are incomplete" >&2
	exit 1
fi
echo "ulogd.sh: $(wc -l <"$out/logemu.log") LOGEMU lines, $(wc -l <"$out/ulogd.json") JSON lines in $out"
