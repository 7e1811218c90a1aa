#!/bin/bash
# Regenerates textlog/testdata/netfilter/ with the real kernel: the lines
# the iptables LOG target and nft's log statement print, as /dev/kmsg,
# dmesg and dmesg -T show them, plus syslog and journal wrappings of the
# same records with fixed hosts and stamps.
#
# Run as root from anywhere: textlog/testdata/gen/netfilter.sh
# Needs ip, nft, iptables and ip6tables (the nf_tables variant is fine),
# dmesg, dd, awk and bash built with /dev/tcp and /dev/udp.
#
# Everything happens in a private network namespace created here and
# removed on exit: packets go only to 127.0.0.1 and ::1 on that namespace's
# loopback, so nothing leaves the machine or reaches the host's stack. Each
# packet is sent once; there are no retries and no loops without a bound.
#
# The kernel prints LOG lines from a namespace other than the first only
# when net.netfilter.nf_log_all_netns is 1; it is set for the run and put
# back as it was on exit. The namespace's TTL and hop limit are set to 93
# so that its lines can be told from anyone else's in the shared kernel log.
#
# Rules (nft unless said otherwise), in the prerouting hook, each ending in
# "accept" so that a packet is logged once:
#   icmp / icmpv6 destination unreachable  "knock "   errors quoting a UDP knock
#   IPv4 fragments, IPv6 fragment header   "knock "   udp 9002, 3000 bytes, MTU 1280
#   tcp 7000, udp 9000                     "knock "   the knocks
#   tcp 7001                               "knock"    prefix glued to IN=
#   tcp 7002                               "evil SRC=6.6.6.6 DPT=7000 "
#   tcp 7003                               "x IN=a OUT=b SRC=6.6.6.6 DPT=7000 "
#   tcp 7004                               "knock ", log flags all, a packet mark
#   tcp 7005                               "[UFW BLOCK] "
#   tcp 7006 (iptables/ip6tables -j LOG)   "ipt knock: "
#   tcp 7007 (iptables/ip6tables -j LOG)   "ipt knock: " with every --log-* option
# and in the output hook:
#   tcp 7000                               "knock "   the same knock, outbound,
#                                                     with the sender's UID and GID
# Every packet is sent over IPv4 and IPv6. udp 9000 and 9002 have no
# listener, so each brings an ICMP port unreachable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/../netfilter
marker=93

if [ "$(id -u)" != 0 ]; then
	echo "netfilter.sh: must run as root (network namespace, nftables, /dev/kmsg)" >&2
	exit 1
fi

ns=pknetfilter-$$-$RANDOM
work=$(mktemp -d)
all_netns=$(sysctl -n net.netfilter.nf_log_all_netns)
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	sysctl -qw net.netfilter.nf_log_all_netns="$all_netns" || true
	rm -rf "$work"
}
trap cleanup EXIT

# kmsg prints the /dev/kmsg records present now, one a line, without
# blocking at the end (dd stops at EAGAIN).
kmsg() { dd if=/dev/kmsg iflag=nonblock bs=16384 2>/dev/null || true; }

ip netns add "$ns"
inns() { ip netns exec "$ns" "$@"; }
inns ip link set lo up
# A small MTU makes a 3000-byte datagram leave as three fragments.
inns ip link set lo mtu 1280
inns sysctl -qw net.ipv4.ip_default_ttl=$marker
for c in all default lo; do
	inns sysctl -qw net.ipv6.conf.$c.hop_limit=$marker
done

inns nft -f - <<'EOF'
table inet pk {
	chain pre {
		type filter hook prerouting priority 0; policy accept;
		icmp type destination-unreachable log prefix "knock " accept
		icmpv6 type destination-unreachable log prefix "knock " accept
		ip frag-off & 0x3fff != 0 log prefix "knock " accept
		exthdr frag exists log prefix "knock " accept
		tcp dport 7000 log prefix "knock " accept
		udp dport 9000 log prefix "knock " accept
		tcp dport 7001 log prefix "knock" accept
		tcp dport 7002 log prefix "evil SRC=6.6.6.6 DPT=7000 " accept
		tcp dport 7003 log prefix "x IN=a OUT=b SRC=6.6.6.6 DPT=7000 " accept
		tcp dport 7004 meta mark set 0x2a log prefix "knock " flags all accept
		tcp dport 7005 log prefix "[UFW BLOCK] " accept
	}
	chain out {
		type filter hook output priority 0; policy accept;
		tcp dport 7000 log prefix "knock " flags skuid accept
	}
}
EOF
for ipt in iptables ip6tables; do
	inns $ipt -t raw -A PREROUTING -p tcp --dport 7006 -j LOG --log-prefix "ipt knock: "
	inns $ipt -t raw -A PREROUTING -p tcp --dport 7007 -j LOG --log-prefix "ipt knock: " \
		--log-tcp-sequence --log-tcp-options --log-ip-options --log-uid
done

sysctl -qw net.netfilter.nf_log_all_netns=1
start=$(kmsg | awk -F'[,;]' 'NF > 3 && $1 ~ /^[0-9]+$/ { seq = $2 } END { print seq + 0 }')

# Each connection attempt meets a closed port: the SYN is logged, a RST
# answers, and bash gives up at once. The timeout only bounds a surprise.
tcp() { inns timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null || true; }
udp() { inns timeout 5 bash -c "printf '%*s' $3 '' >/dev/udp/$1/$2" 2>/dev/null || true; }
for addr in 127.0.0.1 ::1; do
	for port in 7000 7001 7002 7003 7004 7005 7006 7007; do
		tcp $addr $port
	done
	udp $addr 9000 5
	udp $addr 9002 3000
done
sleep 0.5
sysctl -qw net.netfilter.nf_log_all_netns="$all_netns"

# Our records: after the start, from this namespace (the marker), and
# single lines (continuation lines of /dev/kmsg start with a blank).
kmsg | awk -F'[,;]' -v start="$start" -v m="$marker" \
	'$1 ~ /^[0-9]+$/ && $2 > start && ($0 ~ " TTL=" m " " || $0 ~ " HOPLIMIT=" m " ")' >"$work/kmsg"

# dmesg and dmesg -T print the same records in the same order; pair their
# lines (new records only ever append) and keep those whose uptime stamp is
# one of ours.
awk -F'[,;]' '{ printf "%d.%06d\n", $3 / 1000000, $3 % 1000000 }' "$work/kmsg" >"$work/stamps"
dmesg >"$work/dmesg.all"
TZ=UTC dmesg -T >"$work/dmesgT.all"
n=$(wc -l <"$work/dmesg.all")
head -n "$n" "$work/dmesgT.all" | paste -d '\t' "$work/dmesg.all" - |
	awk -F'\t' -v m="$marker" 'NR == FNR { want[$1] = 1; next }
		{ s = $1; sub(/^\[ */, "", s); sub(/\].*/, "", s) }
		(s in want) && ($1 ~ " TTL=" m " " || $1 ~ " HOPLIMIT=" m " ") { print }' "$work/stamps" - >"$work/pairs"
cut -f1 "$work/pairs" >"$work/dmesg"
cut -f2 "$work/pairs" >"$work/dmesgT"

want=30
got=$(wc -l <"$work/kmsg")
if [ "$got" != "$want" ] || [ "$(wc -l <"$work/dmesg")" != "$want" ] || [ "$(wc -l <"$work/dmesgT")" != "$want" ]; then
	echo "netfilter.sh: expected $want log lines in each form, got $got from /dev/kmsg," \
		"$(wc -l <"$work/dmesg") from dmesg, $(wc -l <"$work/dmesgT") from dmesg -T" >&2
	echo "(was nf_log_all_netns changed by someone else during the run?)" >&2
	exit 1
fi

mkdir -p "$out"
cp "$work/kmsg" "$out/kmsg.txt"
cp "$work/dmesg" "$out/dmesg.txt"
cp "$work/dmesgT" "$out/dmesg-T.txt"

# Wrappings of the same messages with fixed stamps: line i (from 0) is
# stamped 2026-11-22 12:00:00 UTC plus i seconds and i microseconds, so the
# tests can tell what time each line must give.
msgs=$work/msgs
sed 's/^[^;]*;//' "$work/kmsg" >"$msgs"
paste -d '\t' "$work/dmesg" "$msgs" | awk -F'\t' '{
	mono = $1; sub(/\].*/, "]", mono)
	printf "Nov 22 12:%02d:%02d testhost kernel: %s %s\n", int((NR - 1) / 60), (NR - 1) % 60, mono, $2
}' >"$out/rfc3164.txt"
awk '{ printf "Nov 22 12:%02d:%02d.%06d testhost kernel: %s\n", int((NR - 1) / 60), (NR - 1) % 60, NR - 1, $0 }' \
	"$msgs" >"$out/journalctl-k.txt"
awk '{ printf "<4>1 2026-11-22T12:%02d:%02d.%06d+00:00 testhost kernel - - - %s\n", int((NR - 1) / 60), (NR - 1) % 60, NR - 1, $0 }' \
	"$msgs" >"$out/rfc5424.txt"
# rsyslog's RSYSLOG_FileFormat, in a zone east of UTC: the same instants.
awk '{ printf "2026-11-22T13:%02d:%02d.%06d+01:00 testhost kernel: %s\n", int((NR - 1) / 60), (NR - 1) % 60, NR - 1, $0 }' \
	"$msgs" >"$out/rsyslog-iso.txt"

echo "netfilter.sh: wrote $got records in 7 forms to $out"
