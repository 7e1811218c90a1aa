package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"portknock/internal/netnstest"
)

// setConfig is a door that opens by the native nftables set action only:
// no commands, the kernel closes the door.
func (r *rig) setConfig(set4, set6, cmdTimeout, daemonExtra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[daemon]\nstate_dir = %q\n%s\n\n", filepath.Join(r.dir, "state"), daemonExtra)
	fmt.Fprintf(&b, "[[input]]\ntype = \"nflog\"\ngroups = [5]\nprefix = \"knock\"\n\n")
	fmt.Fprintf(&b, "[[door]]\nname = \"ssh\"\nsequence = %s\nseq_timeout = \"5s\"\ntcpflags = \"syn,!ack\"\n", knockSeq)
	fmt.Fprintf(&b, "nft_set = %q\n", set4)
	if set6 != "" {
		fmt.Fprintf(&b, "nft_set_6 = %q\n", set6)
	}
	fmt.Fprintf(&b, "cmd_timeout = %q\n", cmdTimeout)
	return b.String()
}

// TestNFTSetKernelCloses knocks a door that adds the knocker to an
// nftables set, then kills the daemon: the kernel removes the element at
// its timeout with no daemon left to do anything.
func TestNFTSetKernelCloses(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.loadNft(nftRuleset())
	r.ns.StartService(t, svc4)
	r.ns.StartService(t, svc6)
	d := r.startDaemon(r.setConfig("inet knock allow4", "inet knock allow6", "3s", ""))
	r.assertReachable(svc4, false, "before the knock")

	r.knock(r.client, "127.0.0.1", "7000", "8000", "9000:udp")
	r.waitLog(0, "opened", "door=ssh", "src=127.0.0.1", "set=inet knock allow4")
	r.assertSet("allow4", "127.0.0.1")
	r.assertReachable(svc4, true, "after the knock")
	r.knock(r.client, "-6", "::1", "7000", "8000", "9000:udp")
	r.waitLog(0, "opened", "door=ssh", "src=::1", "set=inet knock allow6")
	r.assertSet("allow6", "::1")
	r.assertReachable(svc6, true, "after the IPv6 knock")

	// A re-knock refreshes the element instead of adding a second one.
	r.knock(r.client, "127.0.0.1", "7000", "8000", "9000:udp")
	r.waitLog(0, "nft set element refreshed", "door=ssh", "src=127.0.0.1")
	r.assertSet("allow4", "127.0.0.1")

	if err := d.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.WaitExit(t, waitTimeout)
	r.assertSet("allow4", "127.0.0.1") // still open: the kernel's timer runs
	netnstest.Eventually(t, 3*time.Second+waitTimeout, "the kernel removes the knocker", func() bool {
		return len(r.setElements("allow4")) == 0 && len(r.setElements("allow6")) == 0
	})
	r.assertReachable(svc4, false, "after the element's timeout")
	r.assertReachable(svc6, false, "after the IPv6 element's timeout")
}

// TestNFTSetShutdownRemoves: a clean stop removes the elements the daemon
// added (close_on_exit), long before their timeout.
func TestNFTSetShutdownRemoves(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.loadNft(nftRuleset())
	r.ns.StartService(t, svc4)
	d := r.startDaemon(r.setConfig("inet knock allow4", "", "1h", ""))
	r.knock(r.client, "127.0.0.1", "7000", "8000", "9000:udp")
	r.waitLog(0, "opened", "door=ssh", "src=127.0.0.1", "set=inet knock allow4")
	r.assertReachable(svc4, true, "after the knock")
	d.Stop(t)
	if _, err := d.Exited(); err != nil {
		t.Fatalf("daemon stopped by SIGTERM: %v", err)
	}
	r.assertSet("allow4")
	r.assertReachable(svc4, false, "after the daemon stopped")
}

// TestNFTSetErrors: a set that does not exist, or that lacks the timeout
// flag, stops the start with a message naming the door, the key and the
// set, and `check` reports the same with exit status 1.
func TestNFTSetErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.loadNft(nftRuleset() + "table inet other {\n\tset plain { type ipv4_addr; }\n}\n")
	for _, c := range []struct {
		set, want string
	}{
		{"inet knock nosuch", "no such set"},
		{"inet other plain", "timeout flag"},
		{"inet knock allow6", "holds ipv6_addr, not ipv4_addr"},
	} {
		cfg := r.writeConfig(r.setConfig(c.set, "", "30s", ""))
		p := r.ns.Start(t, nil, r.daemon, "-c", cfg)
		err := p.WaitExit(t, waitTimeout)
		if exitCode(err) != 1 || !strings.Contains(p.Output(), c.want) {
			t.Errorf("nft_set %q: exit %v, want 1 and %q in:\n%s", c.set, err, c.want, p.Output())
		}
		out, err := r.ns.Output(r.daemon, "check", "-c", cfg)
		if exitCode(err) != 1 || !strings.Contains(out, c.want) {
			t.Errorf("check with nft_set %q: exit %v, want 1 and %q in:\n%s", c.set, err, c.want, out)
		}
	}
	out, err := r.ns.Output(r.daemon, "check", "-c", r.writeConfig(r.setConfig("inet knock allow4", "inet knock allow6", "30s", "")))
	if err != nil || !strings.Contains(out, `nft_set "inet knock allow4": ok`) || !strings.Contains(out, `nft_set_6 "inet knock allow6": ok`) {
		t.Errorf("check of good sets: %v\n%s", err, out)
	}
}
