#!/bin/sh
# portknock package: after install or upgrade (.deb: "configure" [OLD];
# .rpm: 1 for an install, 2 or more for an upgrade).
#
# Creates the system user portknockd and its state directory. Enables and
# starts nothing: the firewall and /etc/portknockd.toml must be set up
# first. On an upgrade, a running daemon is restarted on the new binary (its
# clean stop closes open doors; the journal keeps what it must).
#
# DPKG_ROOT is set when dpkg installs into another root without chroot
# (dpkg --root --force-script-chrootless): everything then happens there,
# and nothing touches the running system.
set -e

root=${DPKG_ROOT:-}

upgrade=no
case "$1" in
configure) [ -n "$2" ] && upgrade=yes ;;
[0-9]*) [ "$1" -ge 2 ] && upgrade=yes ;;
esac

if ! grep -q '^portknockd:' "$root/etc/passwd" 2>/dev/null; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers --root="${root:-/}" portknockd.conf
	elif command -v useradd >/dev/null 2>&1; then
		useradd ${root:+--prefix "$root"} --system --user-group \
			--home-dir /var/lib/portknockd --no-create-home \
			--shell /usr/sbin/nologin --comment "portknock daemon" portknockd
	else
		adduser --system --group --home /var/lib/portknockd --no-create-home \
			--shell /usr/sbin/nologin --gecos "portknock daemon" portknockd
	fi
fi

# The unit's StateDirectory= makes it too; this is for a daemon started
# without systemd. The daemon refuses a state_dir others may write.
if [ -z "$root" ] && [ ! -e /var/lib/portknockd ]; then
	install -d -m 0700 -o portknockd -g portknockd /var/lib/portknockd
fi

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$upgrade" = yes ]; then
		systemctl try-restart portknockd.service >/dev/null 2>&1 || true
	fi
fi

if [ "$upgrade" = no ]; then
	cat <<'MSG'
portknock: portknockd is installed but neither enabled nor started. Set up
the firewall and /etc/portknockd.toml (see portknockd.toml(5)), then:
  portknockd check --user portknockd
  systemctl enable --now portknockd
MSG
fi
exit 0
