#!/bin/sh
# sealed-knock.sh - knock on a portknockd sealed door with openssl(1).
#
# Usage: sealed-knock.sh KEYFILE HOST BASE [SOURCE]
#
# A second, independent client for sealed doors, written from the
# specification (docs/sealed.md) in POSIX sh: it seals one block with the
# door's key and sends it as 16 knocks on BASE..BASE+4095.
#
#   KEYFILE  the door's key file: one line of base64 (32 bytes), '#' comment
#            lines and blank lines allowed; readable by its owner only.
#   HOST     the daemon's host, a name or an address.
#   BASE     the door's base port, 1..61440.
#   SOURCE   the address the daemon sees the knocks come from (behind NAT:
#            the public address), or "none" for an unbound knock, which only
#            doors with bind_source = false accept. Default: the address this
#            machine uses to reach HOST, from "ip route get" (Linux).
#
# Environment:
#   ID=N         door id, 0..255 (default 0)
#   PROTO=P      tcp or udp (default tcp)
#   DELAY=MS     milliseconds between knocks, with knock(1) (default 0)
#   DRY_RUN=1    print the 16 ports, one per line, and send nothing
#   VERBOSE=1    show the block's fields and the ciphertext on stderr
#   NOW=SECS     the block's time in Unix seconds (tests; default: now)
#   NONCE=HEX    the block's nonce, 8 hex digits (tests; default: random)
#
# Needs openssl 3.x (kdf, dgst, enc, rand, base64), od, awk, tr and ls;
# to knock, knock(1) from Debian's knockd package or else nc(1); without
# SOURCE, ip(8) and, for a host name, getent(1).
#
# Exit status: 0 when the knocks were sent (or printed), 1 on an error,
# 2 for a bad command line.

set -eu

me=sealed-knock
die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 1
}
usage() {
	printf 'usage: %s KEYFILE HOST BASE [SOURCE]\n' "$me" >&2
	exit 2
}
say() {
	[ "${VERBOSE:-0}" = 1 ] || return 0
	printf '%s: %s\n' "$me" "$*" >&2
}

# dec NAME VALUE MAX: VALUE as a decimal number without leading zeros, if
# it is one and at most MAX; else die naming NAME.
dec() {
	case $2 in
	'' | *[!0-9]*) die "$1 must be a decimal number, not '$2'" ;;
	esac
	_d=${2#"${2%%[!0]*}"}
	_d=${_d:-0}
	{ [ ${#_d} -le 19 ] && [ "$_d" -le "$3" ]; } || die "$1 $2 is out of range (at most $3)"
	printf '%s' "$_d"
}

# The awk helpers: hex digits to numbers, addresses to bytes, bytes to
# printf escapes and ports.
awk_lib='
function hexval(h,   i, v) {
	h = tolower(h)
	v = 0
	for (i = 1; i <= length(h); i++)
		v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
	return v
}
function ishex(g) { return g ~ /^[0-9A-Fa-f]+$/ && length(g) <= 4 }
# ip4 returns the 4 bytes of a dotted quad as 8 hex digits, or "".
function ip4(s,   n, p, i, out) {
	n = split(s, p, ".")
	if (n != 4) return ""
	out = ""
	for (i = 1; i <= 4; i++) {
		if (p[i] !~ /^[0-9]+$/ || length(p[i]) > 3 || p[i] + 0 > 255 || p[i] ~ /^0./) return ""
		out = out sprintf("%02x", p[i] + 0)
	}
	return out
}
# ip6 returns the 16 bytes of an IPv6 address as 32 hex digits, or "".
# A zone (%eth0) is dropped, an IPv4 tail (::ffff:192.0.2.1) read.
function ip6(s,   t, n, ng, g, left, right, nl, nr, L, R, i, out) {
	sub(/%.*/, "", s)
	if (s ~ /\./) {
		match(s, /[^:]*$/)
		t = ip4(substr(s, RSTART))
		if (t == "" || RSTART == 1) return ""
		s = substr(s, 1, RSTART - 1) substr(t, 1, 4) ":" substr(t, 5, 4)
	}
	if (s ~ /:::/) return ""
	n = gsub(/::/, "&", s)
	if (n > 1) return ""
	if (n == 1) {
		i = index(s, "::")
		left = substr(s, 1, i - 1)
		right = substr(s, i + 2)
		nl = left == "" ? 0 : split(left, L, ":")
		nr = right == "" ? 0 : split(right, R, ":")
		if (nl + nr > 7) return ""
		ng = 0
		for (i = 1; i <= nl; i++) g[++ng] = L[i]
		for (i = 1; i <= 8 - nl - nr; i++) g[++ng] = "0"
		for (i = 1; i <= nr; i++) g[++ng] = R[i]
	} else {
		ng = split(s, g, ":")
		if (ng != 8) return ""
	}
	out = ""
	for (i = 1; i <= 8; i++) {
		if (!ishex(g[i])) return ""
		out = out sprintf("%04x", hexval(g[i]))
	}
	return out
}
# addr returns the bytes the source tag is made of: 4 for IPv4 and
# IPv4-mapped IPv6, else 16; "" when s is not an address.
function addr(s,   b) {
	if (s !~ /:/) return ip4(s)
	b = ip6(s)
	if (substr(b, 1, 24) == "00000000000000000000ffff") return substr(b, 25)
	return b
}
# esc spells hex digits as printf octal escapes.
function esc(h,   i, out) {
	out = ""
	for (i = 1; i < length(h); i += 2)
		out = out sprintf("\\%03o", hexval(substr(h, i, 2)))
	return out
}
'

# hexbytes: the bytes on stdin as lower-case hex digits on one line.
hexbytes() {
	od -An -v -tx1 | tr -d ' \n'
}

# tobytes HEX: the bytes HEX spells, on stdout.
tobytes() {
	# shellcheck disable=SC2059 # the format is octal escapes only
	printf "$(awk -v h="$1" "$awk_lib"'BEGIN { printf "%s", esc(h) }')"
}

# addrhex ADDR: see addr above; empty when ADDR is not an address.
addrhex() {
	awk -v s="$1" "$awk_lib"'BEGIN { print addr(s) }'
}

{ [ $# -ge 3 ] && [ $# -le 4 ]; } || usage
keyfile=$1
host=$2
base=$(dec BASE "$3" 61440)
[ "$base" -ge 1 ] || die "BASE must be 1..61440: the door owns BASE..BASE+4095"
source=${4-}
id=$(dec ID "${ID:-0}" 255)
proto=${PROTO:-tcp}
case $proto in
tcp | udp) ;;
*) die "PROTO must be tcp or udp, not '$proto'" ;;
esac
command -v openssl >/dev/null 2>&1 || die "openssl not found"

# The key: one base64 line among comments, 32 bytes.
{ [ -f "$keyfile" ] && [ -r "$keyfile" ]; } || die "$keyfile: not a readable file"
case $(ls -ld -- "$keyfile") in
????r* | ???????r*) die "$keyfile: readable by group or others; chmod 600 $keyfile" ;;
esac
b64=$(awk '
	{ sub(/\r$/, ""); sub(/^[ \t]+/, ""); sub(/[ \t]+$/, "") }
	$0 == "" || /^#/ { next }
	{ n++; k = $0 }
	END { if (n == 1) print k; else print "lines:" n }
' "$keyfile")
case $b64 in
lines:*) die "$keyfile: want one key line, found ${b64#lines:}" ;;
*[!A-Za-z0-9+/=]*) die "$keyfile: the key line is not base64" ;;
esac
[ ${#b64} -eq 44 ] || die "$keyfile: the key line is not 32 bytes in base64 (44 characters)"
ikm=$(printf '%s\n' "$b64" | openssl base64 -d -A | hexbytes)
[ ${#ikm} -eq 64 ] || die "$keyfile: the key line is not 32 bytes in base64"
case $ikm in
*[!0]*) ;;
*) die "$keyfile: the key is all zero bytes, not a random key" ;;
esac

# Sub-keys: HKDF-SHA256 of the key, no salt, 32 bytes each.
hkdf() {
	openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt "hexkey:$ikm" \
		-kdfopt "info:$1" HKDF | tr -d ':\n' | tr 'A-F' 'a-f'
}
aeskey=$(hkdf "portknock sealed v1 aes")
tagkey=$(hkdf "portknock sealed v1 tag")
{ [ ${#aeskey} -eq 64 ] && [ ${#tagkey} -eq 64 ]; } || die "openssl kdf HKDF failed (OpenSSL 3.x needed)"

# Where the knocks go, and from which address the daemon will see them.
target=$(addrhex "$host")
if [ -n "$target" ]; then
	hostaddr=$host
else
	case $source in
	'' | none) db=ahosts ;;
	*:*) db=ahostsv6 ;;
	*) db=ahostsv4 ;;
	esac
	hostaddr=$(getent "$db" "$host" | awk 'NR == 1 { print $1 }') || true
	[ -n "$hostaddr" ] || die "cannot resolve $host"
fi
if [ -z "$source" ]; then
	source=$(ip route get "$hostaddr" 2>/dev/null |
		awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }') || true
	[ -n "$source" ] || die "cannot tell the source address for $hostaddr; give SOURCE"
	say "source $source (from ip route get $hostaddr)"
fi
if [ "$source" = none ]; then
	tag=00000000
else
	srcbytes=$(addrhex "$source")
	[ -n "$srcbytes" ] || die "SOURCE '$source' is not an address or none"
	tag=$(tobytes "$srcbytes" |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$tagkey" |
		awk '{ print substr($NF, 1, 8) }')
	[ ${#tag} -eq 8 ] || die "openssl dgst HMAC failed"
fi

# The block: time, nonce, tag, door id, magic "PK" 1.
now=${NOW:-$(date +%s 2>/dev/null || awk 'BEGIN { srand(); print srand() }')}
now=$(dec NOW "$now" 9223372036854775807)
nonce=${NONCE:-$(openssl rand -hex 4)}
case $nonce in
[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]) ;;
*) die "NONCE must be 8 hex digits, not '$nonce'" ;;
esac
nonce=$(printf '%s' "$nonce" | tr 'A-F' 'a-f')
plain=$(printf '%08x%s%s%02x504b01' $((now % 4294967296)) "$nonce" "$tag" "$id")
cipher=$(tobytes "$plain" | openssl enc -aes-256-ecb -nopad -K "$aeskey" | hexbytes)
[ ${#cipher} -eq 32 ] || die "openssl enc -aes-256-ecb failed"
say "time $now nonce $nonce tag $tag id $id"
say "plain  $plain"
say "cipher $cipher"

# Knock i carries ciphertext byte i on BASE + 256*i + byte.
ports=$(awk -v c="$cipher" -v base="$base" "$awk_lib"'BEGIN {
	for (i = 0; i < 16; i++) print base + 256 * i + hexval(substr(c, 2 * i + 1, 2))
}')
if [ "${DRY_RUN:-0}" = 1 ]; then
	printf '%s\n' "$ports"
	exit 0
fi

set --
list=
for p in $ports; do
	set -- "$@" "$p:$proto"
	list="$list $p"
done
case $hostaddr in
*:*) family=-6 ;;
*) family=-4 ;;
esac
say "knocking on $hostaddr ($proto):$list"
if command -v knock >/dev/null 2>&1; then
	exec knock "$family" -d "$(dec DELAY "${DELAY:-0}" 60000)" "$hostaddr" "$@"
fi
command -v nc >/dev/null 2>&1 || die "neither knock nor nc found to send the knocks"
# nc cannot pace itself; the knocks' order does not matter to the daemon.
for p in $ports; do
	if [ "$proto" = udp ]; then
		printf 'k' | nc -u -w 1 "$hostaddr" "$p" >/dev/null 2>&1 || true
	else
		nc -z -w 1 "$hostaddr" "$p" >/dev/null 2>&1 || true
	fi
done
