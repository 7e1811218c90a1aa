#!/bin/sh
# portknock package: before removal (.deb: "remove", "upgrade", ...; .rpm:
# 0 for an erase, 1 or more for an upgrade).
#
# On removal, stops and disables the service: its clean stop runs the
# pending closes, so no door stays open behind a removed daemon. An upgrade
# leaves it running; the new package's postinstall restarts it.
set -e

remove=no
case "$1" in
remove | deconfigure) remove=yes ;;
0) remove=yes ;;
esac

if [ "$remove" = yes ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now portknockd.service >/dev/null 2>&1 || true
fi
exit 0
