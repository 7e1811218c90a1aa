#!/usr/bin/env bash
# Builds portknock's packages: packaging/build-deb.sh OUTDIR
#
# For each architecture (ARCHS, default "amd64 arm64 armhf"; armhf is
# GOARCH=arm GOARM=7) it builds portknockd and portknock (static:
# CGO_ENABLED=0; -trimpath; symbol tables stripped; the version stamped
# into --version) and packs a .deb and an .rpm into OUTDIR with nfpm, the
# tool pinned in packaging/tool/go.mod. It prints each package's name and
# size, and the binaries' sizes.
#
# Environment:
#   ARCHS       architectures to build, Debian's names: amd64 arm64 armhf
#   VERSION     the package version; default 0.0.0~gitDATE.COMMIT from the
#               checkout's last commit (sorts before any release 0.0.0)
#   MAINTAINER  the packages' Maintainer/Packager field
#   SOURCE_DATE_EPOCH  the files' times in the packages; default the last
#               commit's time, so that a rebuild gives the same packages
set -euo pipefail

out=${1:?usage: packaging/build-deb.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$top"

archs=${ARCHS:-amd64 arm64 armhf}
if [ -z "${VERSION:-}" ]; then
	if git rev-parse --git-dir >/dev/null 2>&1; then
		VERSION="0.0.0~git$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd).$(git rev-parse --short=12 HEAD)"
	else
		VERSION="0.0.0~dev"
	fi
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && git rev-parse --git-dir >/dev/null 2>&1; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
fi
export VERSION SOURCE_DATE_EPOCH
export MAINTAINER=${MAINTAINER:-portknock developers <portknock@example.org>}

# The pinned nfpm, built once from the module cache (or fetched through
# the Go module proxy the first time).
tooldir=$(mktemp -d)
trap 'rm -rf "$tooldir"' EXIT
(cd packaging/tool && go build -o "$tooldir/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm)

for arch in $archs; do
	case $arch in
	amd64) goarch=amd64 goarm='' nfpmarch=amd64 ;;
	arm64) goarch=arm64 goarm='' nfpmarch=arm64 ;;
	armhf) goarch=arm goarm=7 nfpmarch=arm7 ;;
	*)
		echo "build-deb.sh: unknown architecture $arch (amd64, arm64, armhf)" >&2
		exit 2
		;;
	esac
	build=$out/build-$arch
	rm -rf "$build"
	mkdir -p "$build/man"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X portknock/internal/buildinfo.stamped=$VERSION" \
		-o "$build/" ./cmd/portknockd ./cmd/portknock
	# The documents, with the modes and times the package gives them.
	mkdir -p "$build/doc"
	cp -R README.md docs/sealed.md examples "$build/doc/"
	chmod -R u=rwX,go=rX "$build/doc"
	for page in portknockd.8 portknock.1 portknockd.toml.5; do
		gzip -9n <"docs/man/$page" >"$build/man/$page.gz"
	done
	if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
		find "$build" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	fi
	for packager in deb rpm; do
		ARCH=$nfpmarch BUILD=$build "$tooldir/nfpm" package --config packaging/nfpm.yaml \
			--packager "$packager" --target "$out/" >/dev/null
	done
	printf '%s: portknockd %s bytes, portknock %s bytes\n' "$arch" \
		"$(stat -c %s "$build/portknockd")" "$(stat -c %s "$build/portknock")"
done
cd "$out"
for f in *.deb *.rpm; do
	printf '%s %s bytes\n' "$f" "$(stat -c %s "$f")"
done
