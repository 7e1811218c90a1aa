// Package packaging builds portknock's .deb and .rpm: build-deb.sh builds
// the binaries for each architecture and packs them with nfpm (nfpm.yaml;
// the tool is pinned in tool/go.mod), with the systemd unit, the system
// user (sysusers.d), the default configuration, the manual pages and the
// documents. It has no code: its tests check the files packed and install
// the package into a scratch root.
package packaging
