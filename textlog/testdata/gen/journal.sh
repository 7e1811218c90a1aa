#!/bin/bash
# Regenerates textlog/testdata/journal/journal.json: real `journalctl -o json`
# output for a journal holding kernel packet-log entries and the entries a
# local user could add to fool a reader.
#
# No journald with access to the kernel log is needed (nor wanted: the
# entries must not depend on this machine's log). The entries are written in
# the journal export format, imported into a journal file of their own with
# systemd-journal-remote, and printed by journalctl, so the JSON (field
# order, escaping, byte arrays for fields that are not printable UTF-8) is
# journalctl's own. The kernel messages follow the kernel's LOG line format
# (nf_log_syslog); they are written here because this machine's kernel
# cannot log packets from a private network namespace to its log without a
# host-wide setting. Entries keep their order: test expectations rely on it.
#
# Needs: systemd-journal-remote, journalctl (Debian: systemd-journal-remote).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/../journal
remote=${JOURNAL_REMOTE:-/lib/systemd/systemd-journal-remote}
if [ ! -x "$remote" ]; then
	echo "journal.sh: $remote missing (install systemd-journal-remote)" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

boot=6c1f0ba5d9a8441d8b3e2f1a0c9d8e7f
machine=3a8d1c2b4e5f60718293a4b5c6d7e8f9
t=1795316483000000 # 2026-11-22T03:01:23Z, in microseconds
mono=86400000000
mac4=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00
mac6=52:54:00:12:34:56:52:54:00:ab:cd:ef:86:dd

# field NAME VALUE writes one field; values with a newline or bytes that
# are not printable use the export format's binary form.
field() {
	if [[ $2 == *$'\n'* ]] || LC_ALL=C grep -q '[^[:print:]]' <<<"$2"; then
		local n
		n=$(printf '%s' "$2" | wc -c)
		printf '%s\n' "$1"
		printf "$(printf '\\x%02x' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255)) 0 0 0 0)"
		printf '%s\n' "$2"
	else
		printf '%s=%s\n' "$1" "$2"
	fi
}

# begin writes the fields journald adds to every entry.
begin() {
	t=$((t + 1000))
	mono=$((mono + 1000))
	field __REALTIME_TIMESTAMP $t
	field __MONOTONIC_TIMESTAMP $mono
	field _BOOT_ID $boot
	field _MACHINE_ID $machine
	field _HOSTNAME gw
}

# kernel MESSAGE: an entry read from the kernel log.
kernel() {
	begin
	field _TRANSPORT kernel
	field PRIORITY 4
	field SYSLOG_FACILITY 0
	field SYSLOG_IDENTIFIER kernel
	field _SOURCE_MONOTONIC_TIMESTAMP $((mono - 200))
	field MESSAGE "$1"
	echo
}

# user TRANSPORT IDENTIFIER MESSAGE: an entry from a local process.
user() {
	begin
	field _TRANSPORT "$1"
	field PRIORITY 5
	field SYSLOG_FACILITY 1
	field SYSLOG_IDENTIFIER "$2"
	field _PID 4242
	field _UID 1000
	field _GID 1000
	field _COMM "$2"
	field _SOURCE_REALTIME_TIMESTAMP $((t - 100))
	field MESSAGE "$3"
	echo
}

v4in="IN=eth0 OUT= MAC=$mac4 SRC=192.0.2.7 DST=192.0.2.1"
v6in="IN=eth0 OUT= MAC=$mac6 SRC=2001:0db8:0000:0000:0000:0000:0000:0007 DST=2001:0db8:0000:0000:0000:0000:0000:0001"
syn="WINDOW=64240 RES=0x00 SYN URGP=0 "

{
	# The knocks.
	kernel "knock $v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=40000 DPT=7000 $syn"
	kernel "knock$v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54322 DF PROTO=TCP SPT=40001 DPT=8000 $syn"
	kernel "knock $v4in LEN=33 TOS=0x00 PREC=0x00 TTL=64 ID=54323 DF PROTO=UDP SPT=40002 DPT=9000 LEN=13 "
	kernel "knock $v6in LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=327680 PROTO=TCP SPT=40003 DPT=7000 $syn"
	kernel "knock $v6in LEN=53 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=UDP SPT=40004 DPT=9000 LEN=13 "
	kernel "knock IN=eth0 OUT= MAC=$mac6 SRC=0000:0000:0000:0000:0000:ffff:c000:0207 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP SPT=40005 DPT=7000 $syn"
	kernel "knock $v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54324 DF PROTO=TCP SPT=40006 DPT=7000 WINDOW=64240 RES=0x00 CWR ECE SYN URGP=0 MARK=0x2a "
	# A router: forwarded, and outbound.
	kernel "knock IN=eth0 OUT=eth1 MAC=$mac4 SRC=192.0.2.7 DST=198.51.100.20 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=54325 DF PROTO=TCP SPT=40007 DPT=7000 $syn"
	kernel "knock IN= OUT=eth0 SRC=192.0.2.1 DST=198.51.100.9 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=8080 DF PROTO=TCP SPT=50000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 UID=1000 GID=1000 "
	# ICMP errors quoting a packet with the knock port.
	kernel "knock $v4in LEN=61 TOS=0x00 PREC=0xC0 TTL=64 ID=777 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.1 DST=192.0.2.7 LEN=33 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=UDP SPT=40000 DPT=7000 LEN=13 ] "
	kernel "knock $v6in LEN=101 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=1 CODE=4 [SRC=2001:0db8:0000:0000:0000:0000:0000:0001 DST=2001:0db8:0000:0000:0000:0000:0000:0007 LEN=53 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=UDP SPT=40000 DPT=7000 LEN=13 ] "
	# Fragments: the first carries the ports, the others do not.
	kernel "knock $v4in LEN=1276 TOS=0x00 PREC=0x00 TTL=64 ID=4242 MF PROTO=UDP SPT=40008 DPT=9100 LEN=2008 "
	kernel "knock $v4in LEN=772 TOS=0x00 PREC=0x00 TTL=64 ID=4242 FRAG:157 PROTO=UDP "
	kernel "knock $v6in LEN=1280 TC=0 HOPLIMIT=64 FLOWLBL=0 FRAG:0 INCOMPLETE ID:caba19ee PROTO=UDP SPT=40009 DPT=9100 LEN=2008 "
	kernel "knock $v6in LEN=824 TC=0 HOPLIMIT=64 FLOWLBL=0 FRAG:1232 ID:caba19ee PROTO=UDP "
	# A transport header the logger could not read.
	kernel "knock $v4in LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=54326 PROTO=TCP INCOMPLETE [8 bytes] "
	# Prefixes: a UFW-style one, one that looks like fields, one with a
	# quote and a backslash (escaped in JSON), one with a byte that is not
	# UTF-8 and one with a control character (both become byte arrays).
	kernel "[UFW BLOCK] $v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54327 DF PROTO=TCP SPT=40010 DPT=7000 $syn"
	kernel "IN=x OUT=y SRC=198.51.100.66 DPT=22 $v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54328 DF PROTO=TCP SPT=40011 DPT=7000 $syn"
	kernel "kn\"o\\ck $v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54329 DF PROTO=TCP SPT=40012 DPT=7000 $syn"
	kernel "kn"$'\xff'"ock $v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54330 DF PROTO=TCP SPT=40013 DPT=7000 $syn"
	kernel "knock"$'\x01'" $v4in LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54331 DF PROTO=TCP SPT=40014 DPT=7000 $syn"
	# Other kernel messages.
	kernel "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx"
	kernel "net_ratelimit: 42 callbacks suppressed"
	kernel "nf_conntrack: nf_conntrack: table full, dropping packet"
	# What any local user can write: logger (syslog), a service's output
	# (stdout), systemd-cat -t kernel (journal). None is the kernel's.
	user syslog mallory "knock IN=eth0 OUT= MAC=$mac4 SRC=203.0.113.5 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=7000 $syn"
	user syslog kernel "knock IN=eth0 OUT= MAC=$mac4 SRC=203.0.113.5 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=2 DF PROTO=TCP SPT=40000 DPT=8000 $syn"
	user stdout bash "knock IN=eth0 OUT= SRC=203.0.113.5 DST=192.0.2.1 LEN=33 PROTO=UDP SPT=40000 DPT=9000 LEN=13 "
	user journal kernel "knockIN=eth0 OUT= SRC=203.0.113.5 DST=192.0.2.1 LEN=60 PROTO=TCP SPT=40000 DPT=7000 $syn"
	user syslog sshd "Connection closed by 192.0.2.7 port 40000 [preauth]"
	user driver systemd-journald "Journal started"
} >"$work/entries.export"

"$remote" --output="$work/test.journal" "$work/entries.export" 2>/dev/null
mkdir -p "$out"
journalctl --file="$work/test.journal" -o json >"$out/journal.json"
echo "journal.sh: $(wc -l <"$out/journal.json") entries in $out/journal.json"
