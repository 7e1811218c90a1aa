#!/bin/sh
# iptables (nf_tables or legacy backend) for portknockd over NFLOG: the
# knock ports are logged to NFLOG group 5 and dropped; SSH is closed except
# to addresses a door lets in. Pair with examples/iptables.toml.
#
#   sh examples/iptables.sh
set -e
for ipt in iptables ip6tables; do
	# Sessions already open stay open when the door closes.
	$ipt -A INPUT -p tcp --dport 22 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	# The knock space: log the first packet of each attempt, drop all.
	$ipt -A INPUT -p tcp -m multiport --dports 7000,8000 --syn -j NFLOG --nflog-group 5 --nflog-prefix knock
	$ipt -A INPUT -p tcp -m multiport --dports 7000,8000 -j DROP
	$ipt -A INPUT -p udp --dport 9000 -j NFLOG --nflog-group 5 --nflog-prefix knock
	$ipt -A INPUT -p udp --dport 9000 -j DROP
	# The door's start command inserts an ACCEPT above this.
	$ipt -A INPUT -p tcp --dport 22 -j DROP
done
