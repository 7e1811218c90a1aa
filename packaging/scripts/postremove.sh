#!/bin/sh
# portknock package: after removal (.deb: "remove", "purge", "upgrade",
# ...; .rpm: 0 for an erase, 1 or more for an upgrade).
#
# A purge also removes the state directory (the journal of pending closes
# and the replay cache). The system user stays, as Debian does for system
# users: files it owns elsewhere keep a name.
set -e

root=${DPKG_ROOT:-}

if [ "$1" = purge ]; then
	rm -rf "$root/var/lib/portknockd"
fi

case "$1" in
remove | purge | 0)
	if [ -z "$root" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
