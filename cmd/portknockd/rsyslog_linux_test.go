//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/internal/netnstest"
	"portknock/internal/testpki"
)

// rsyslogGTLS is the GnuTLS network stream driver of rsyslog, which
// Debian ships apart from rsyslog itself (rsyslog-gnutls). Without it
// rsyslog starts but cannot forward over TLS.
const rsyslogGTLS = "lmnsd_gtls.so"

// requireRsyslogTLS fails or skips the test, as netnstest.Require does,
// unless rsyslog's TLS driver is installed.
func requireRsyslogTLS(t *testing.T) {
	t.Helper()
	for _, pat := range []string{"/usr/lib/*/rsyslog/" + rsyslogGTLS, "/usr/lib/rsyslog/" + rsyslogGTLS} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return
		}
	}
	msg := "integration test needs rsyslog's TLS driver " + rsyslogGTLS + " (Debian package rsyslog-gnutls)"
	if netnstest.Required() {
		t.Fatalf("%s (%s=1 forbids skipping)", msg, netnstest.EnvRequired)
	}
	t.Skip(msg)
}

// netfilterKnock is a kernel LOG line of a knock packet from src.
func netfilterKnock(src, proto string, port int) string {
	line := fmt.Sprintf("knock IN=lo OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 SRC=%s DST=127.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=%s SPT=40000 DPT=%d", src, strings.ToUpper(proto), port)
	if proto == "tcp" {
		return line + " WINDOW=64240 RES=0x00 SYN URGP=0"
	}
	return line + " LEN=8"
}

// appendLines appends lines to a file, as a logger would.
func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

// knockLines are the kernel's log lines of src knocking the test sequence.
func knockLines(src string) []string {
	return []string{netfilterKnock(src, "tcp", 7000), netfilterKnock(src, "tcp", 8000), netfilterKnock(src, "udp", 9000)}
}

// TestRsyslogTLSForwarding forwards kernel knock lines through a real
// rsyslog over TLS (RFC 5425) with a client certificate, into the
// daemon's TLS syslog listener, and checks that the knocks open the door.
// rsyslog reads the lines from a file the test writes (imfile), has no
// other input, and runs in the test's namespace with its own
// configuration, pid file and work directory.
func TestRsyslogTLSForwarding(t *testing.T) {
	t.Parallel()
	began := time.Now()
	// No firewall here: the knocks are log lines the test writes.
	netnstest.Require(t, "ip", "rsyslogd")
	requireRsyslogTLS(t)
	rsyslogd, _ := exec.LookPath("rsyslogd")
	daemon, _ := buildBinaries(t)
	r := &rig{t: t, ns: netnstest.New(t), dir: t.TempDir(), daemon: daemon}

	pki := filepath.Join(r.dir, "pki")
	if err := os.Mkdir(pki, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t, pki, "test")
	server := ca.Server(t, "portknockd")
	client := ca.Client(t, "rsyslog")

	const listen = "127.0.0.1:6514"
	r.d = r.ns.Start(t, nil, r.daemon, "-c", r.writeConfig(fmt.Sprintf(`
[daemon]
state_dir = %q

[[input]]
type = "syslog"
network = "tls"
listen = %q
tls_cert = %q
tls_key = %q
tls_client_ca = %q
format = "netfilter"
prefix = "knock"

[[door]]
name = "ssh"
sequence = %s
seq_timeout = "5s"
tcpflags = "syn,!ack"
start_command = "true"
`, filepath.Join(r.dir, "state"), listen, server.CertFile, server.KeyFile, ca.CertFile, knockSeq)))
	r.waitLog(0, "syslog listener started", "input=syslog:tls:"+listen)

	knocks := filepath.Join(r.dir, "knocks.log")
	appendLines(t, knocks, knockLines("192.0.2.7")...)
	work := filepath.Join(r.dir, "rsyslog")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(work, "rsyslog.conf")
	// The server is verified by name against the test CA, the client
	// presents its certificate; octet-counted framing as RFC 5425 has it.
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
global(
	workDirectory="%s"
	defaultNetstreamDriverCAFile="%s"
	defaultNetstreamDriverCertFile="%s"
	defaultNetstreamDriverKeyFile="%s"
)
module(load="imfile")
input(type="imfile" file="%s" tag="kernel:" facility="kern" severity="warning")
action(type="omfwd" target="127.0.0.1" port="6514" protocol="tcp"
	streamDriver="gtls" streamDriverMode="1"
	streamDriverAuthMode="x509/name" streamDriverPermittedPeers="%s"
	tcp_framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
`, work, ca.CertFile, client.CertFile, client.KeyFile, knocks, testpki.ServerName)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its output is logged if the test fails.
	r.ns.Start(t, nil, rsyslogd, "-n", "-f", conf, "-i", filepath.Join(work, "rsyslogd.pid"))

	// The lines written before rsyslog started, then lines it follows.
	_, m := r.waitLog(0, "knock sequence complete", "door=ssh", "src=192.0.2.7")
	if in := m["input"]; in != "syslog:tls:"+listen {
		t.Errorf("match came from input %q, want the TLS syslog input", in)
	}
	i, _ := r.waitLog(0, "opened", "door=ssh", "src=192.0.2.7")
	appendLines(t, knocks, knockLines("192.0.2.8")...)
	r.waitLog(i, "opened", "door=ssh", "src=192.0.2.8")
	if l := r.logged("closing a syslog connection: TLS handshake failed"); len(l) > 0 {
		t.Errorf("handshakes failed: %q", l)
	}
	t.Logf("rsyslog over TLS to an open door: %v from the test's start", time.Since(began))
}
