#!/usr/bin/env bash
# Measures portknockd's and portknock's size on every platform CI builds
# them for, and prints the README's "Platforms" table (markdown):
#
#   packaging/sizes.sh
#
# Each binary is built as the packages build it (CGO_ENABLED=0, -trimpath,
# -ldflags "-s -w": no symbol table or DWARF; panics still print stack
# traces) and as a plain "go build" leaves it. Sizes in MiB, 1 decimal.
set -euo pipefail
cd "$(dirname "$0")/.."

platforms=${PLATFORMS:-linux/amd64 linux/arm64 linux/arm linux/mipsle linux/386 freebsd/amd64 openbsd/amd64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo "| platform | portknockd | portknock | portknockd, plain go build | portknock, plain go build |"
echo "|---|---|---|---|---|"
for p in $platforms; do
	goos=${p%/*} goarch=${p#*/}
	name=$p
	goarm=''
	case $goarch in
	arm) goarm=7 name="$p (GOARM=7)" ;;
	mipsle) name="$p (softfloat)" ;;
	esac
	for kind in packaged plain; do
		flags=()
		[ "$kind" = packaged ] && flags=(-trimpath -ldflags "-s -w")
		CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOARM=$goarm GOMIPS=softfloat \
			go build -buildvcs=false "${flags[@]}" -o "$tmp/$kind/" ./cmd/portknockd ./cmd/portknock
	done
	printf '| %s | %s MiB | %s MiB | %s MiB | %s MiB |\n' "$name" \
		"$(mib "$(stat -c %s "$tmp/packaged/portknockd")")" "$(mib "$(stat -c %s "$tmp/packaged/portknock")")" \
		"$(mib "$(stat -c %s "$tmp/plain/portknockd")")" "$(mib "$(stat -c %s "$tmp/plain/portknock")")"
	rm -rf "$tmp/packaged" "$tmp/plain"
done
