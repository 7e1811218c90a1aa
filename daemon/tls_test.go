package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/config"
	"portknock/internal/netnstest"
	"portknock/internal/testpki"
)

// freeLoopbackPort returns a TCP port nothing listens on now. The tests
// run in a network namespace of their own, so nothing else takes it
// before the daemon binds it.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// replaceFile puts data at path through a rename, as a certificate
// renewal tool does, with the given mode.
func replaceFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReloadRenewsTLSCertificate: a reload reads a TLS syslog input's
// certificate and key again, so that a renewed certificate is served
// without a restart; an unusable key refuses the reload and the running
// certificate stays.
func TestReloadRenewsTLSCertificate(t *testing.T) {
	netnstest.RequirePrivate(t, "listens on loopback")
	pki := t.TempDir()
	ca := testpki.NewCA(t, pki, "test")
	first, renewed := ca.Server(t, "first"), ca.Server(t, "renewed")
	client := ca.Client(t, "firewall")
	// The daemon's files, named in the configuration relative to it.
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "syslog.pem"), filepath.Join(dir, "syslog.key")
	replaceFile(t, cert, readFile(t, first.CertFile), 0o644)
	replaceFile(t, key, readFile(t, first.KeyFile), 0o600)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freeLoopbackPort(t)))

	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	src := fmt.Sprintf(`
[daemon]
state_dir = %q

[[input]]
type = "syslog"
network = "tls"
listen = %q
tls_cert = "syslog.pem"
tls_key = "syslog.key"
tls_client_ca = %q
format = "simple"

[[door]]
name = "ssh"
sequence = ["7000/tcp", "8000/tcp", "9000/udp"]
start_command = ["sh", "-c", "echo open %%DOOR%% %%IP%% > %s"]
`, t.TempDir(), addr, ca.CertFile, sig)
	cfgPath := filepath.Join(dir, "portknockd.toml")
	load := func() (*config.Config, error) { return config.Parse(cfgPath, []byte(src)) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d := start(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Load: load})

	// served connects as the firewall and returns the name on the
	// certificate the daemon presents.
	served := func() (*tls.Conn, string) {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{
			RootCAs:      ca.Pool(),
			ServerName:   testpki.ServerName,
			Certificates: []tls.Certificate{client.TLS},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	knock := func(c *tls.Conn, src string) {
		t.Helper()
		for _, k := range []string{"7000", "8000", "9000/udp"} {
			line := k + " " + src
			if _, err := fmt.Fprintf(c, "%d %s", len(line), line); err != nil {
				t.Fatal(err)
			}
		}
	}

	c, cn := served()
	if cn != "first" {
		t.Fatalf("daemon presents %q, want the first certificate", cn)
	}
	knock(c, "192.0.2.7")
	expect(t, ch, "open ssh 192.0.2.7")

	replaceFile(t, cert, readFile(t, renewed.CertFile), 0o644)
	replaceFile(t, key, readFile(t, renewed.KeyFile), 0o600)
	if err := d.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	c2, cn := served()
	if cn != "renewed" {
		t.Fatalf("after the reload the daemon presents %q, want the renewed certificate", cn)
	}
	knock(c2, "192.0.2.8")
	expect(t, ch, "open ssh 192.0.2.8")

	// A key left open to others refuses the reload; the renewed
	// certificate stays in force.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, cert, readFile(t, first.CertFile), 0o644)
	err = d.Reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "tls_key") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Reload with an open key: %v, want it refused for tls_key", err)
	}
	if !strings.Contains(logs.String(), "reload failed; keeping the running configuration") {
		t.Errorf("refused reload not logged:\n%s", logs.String())
	}
	if _, cn := served(); cn != "renewed" {
		t.Errorf("after a refused reload the daemon presents %q, want the renewed certificate", cn)
	}
	// The connection made before the reloads is still served.
	knock(c, "192.0.2.9")
	expect(t, ch, "open ssh 192.0.2.9")
}

// TestTLSKeyOpenToOthersRefusedAtStart: the daemon does not start with a
// TLS key that group or others can read.
func TestTLSKeyOpenToOthersRefusedAtStart(t *testing.T) {
	pki := t.TempDir()
	server := testpki.NewCA(t, pki, "test").Server(t, "server")
	if err := os.Chmod(server.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(pki, "t.toml"), []byte(fmt.Sprintf(`
[daemon]
state_dir = %q
[[input]]
type = "syslog"
network = "tls"
tls_cert = %q
tls_key = %q
[[door]]
name = "ssh"
sequence = ["7000"]
start_command = "true"
`, t.TempDir(), server.CertFile, server.KeyFile)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{})
	if d != nil || err == nil || !strings.Contains(err.Error(), "mode 0640") || !strings.Contains(err.Error(), "input syslog:tls:127.0.0.1:6514") {
		t.Fatalf("New = %v, %v; want it refused for the key's mode", d, err)
	}
}
