package textlog

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"portknock/input"
	"portknock/internal/testpki"
	"portknock/sequence"
)

// slPKI is a test's certificates: a CA that signs the listener's and the
// senders' certificates, and another CA that nothing here trusts.
type slPKI struct {
	ca, other      *testpki.CA
	server, client *testpki.Cert
	stranger       *testpki.Cert // a client certificate of the other CA
}

func newSLPKI(t *testing.T) *slPKI {
	t.Helper()
	dir := t.TempDir()
	p := &slPKI{ca: testpki.NewCA(t, dir, "test"), other: testpki.NewCA(t, dir, "other")}
	p.server = p.ca.Server(t, "server")
	p.client = p.ca.Client(t, "firewall")
	p.stranger = p.other.Client(t, "stranger")
	return p
}

// creds loads the listener's credentials, with the client CA when
// clientCA is set.
func (p *slPKI) creds(t *testing.T, clientCA bool) *SyslogCredentials {
	t.Helper()
	files := SyslogTLSFiles{Cert: p.server.CertFile, Key: p.server.KeyFile}
	if clientCA {
		files.ClientCA = p.ca.CertFile
	}
	c, err := LoadSyslogCredentials(files)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dial connects to a TLS listener as a sender with cert (none if
// nil) and runs the handshake, which the sender checks against the test
// CA.
func (p *slPKI) dial(t *testing.T, addr string, cert *testpki.Cert, edit ...func(*tls.Config)) (*tls.Conn, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: testpki.ServerName}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	for _, e := range edit {
		e(cfg)
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	c := tls.Client(raw, cfg)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return c, err
	}
	return c, nil
}

// slRefused checks that the listener turned a sender down: its handshake
// failed, or, since in TLS 1.3 a sender learns that its certificate was
// refused only when it next reads, the connection ends without data.
func slRefused(t *testing.T, c *tls.Conn, err error) {
	t.Helper()
	if err != nil {
		return
	}
	_, _ = c.Write([]byte(slOct("7999 192.0.2.99")))
	n, err := c.Read(make([]byte, 16))
	if err == nil || n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the listener kept a refused sender: read %d, %v", n, err)
	}
}

func TestSyslogTLS(t *testing.T) {
	slNetns(t)
	p := newSLPKI(t)

	t.Run("server certificate only", func(t *testing.T) {
		r := slStart(t, &SyslogListener{Network: SyslogTLS, TLS: p.creds(t, false), Parser: Parser{Format: FormatSimple, Prefix: "knock"}})
		c, err := p.dial(t, r.addr(t, "tcp"), nil)
		if err != nil {
			t.Fatal(err)
		}
		// Octet-counted, as RFC 5425 frames, and newline-framed, as
		// rsyslog sends by default.
		slWrite(t, c, slOct("knock 7000 192.0.2.1")+slOct("knock 7001 192.0.2.1")+"knock 7002 192.0.2.1\n")
		r.expect(t, slKnock("192.0.2.1", 7000, sequence.TCP), slKnock("192.0.2.1", 7001, sequence.TCP), slKnock("192.0.2.1", 7002, sequence.TCP))
	})

	t.Run("client certificates", func(t *testing.T) {
		var logs slLog
		r := slStart(t, &SyslogListener{
			Network: SyslogTLS,
			TLS:     p.creds(t, true),
			Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		})
		addr := r.addr(t, "tcp")
		c, err := p.dial(t, addr, p.client)
		if err != nil {
			t.Fatal(err)
		}
		slWrite(t, c, slOct("7000 192.0.2.1"))
		r.expect(t, slKnock("192.0.2.1", 7000, sequence.TCP))

		refused := 0
		for _, tc := range []struct {
			name string
			cert *testpki.Cert
			edit func(*tls.Config)
		}{
			{name: "no certificate"},
			{name: "certificate of another CA", cert: p.stranger},
			// The server's own certificate is no client certificate.
			{name: "server certificate", cert: p.server},
			{name: "TLS 1.1", cert: p.client, edit: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var edits []func(*tls.Config)
				if tc.edit != nil {
					edits = append(edits, tc.edit)
				}
				c, err := p.dial(t, addr, tc.cert, edits...)
				slRefused(t, c, err)
				refused++
				r.eventually(t, "the handshake to be counted as failed", func(st input.Stats) bool { return st.Counter(SyslogHandshakeFailed) == uint64(refused) })
			})
		}
		// The good sender is still served.
		slWrite(t, c, slOct("7001 192.0.2.1"))
		r.expect(t, slKnock("192.0.2.1", 7001, sequence.TCP))
		r.noEvents(t)
		log := logs.String()
		if !strings.Contains(log, `level=WARN msg="closing a syslog connection: TLS handshake failed" input=`+slName+" src=127.0.0.1") {
			t.Errorf("the failed handshake is not logged as a warning with input and src:\n%s", log)
		}
	})

	t.Run("allow applies to the peer", func(t *testing.T) {
		r := slStart(t, &SyslogListener{Network: SyslogTLS, TLS: p.creds(t, true), Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
		c, err := p.dial(t, r.addr(t, "tcp"), p.client)
		slRefused(t, c, err)
		r.eventually(t, "the sender to be denied", func(st input.Stats) bool { return st.Counter(SyslogDenied) == 1 })
		if st := r.l.Stats(); st.Counter(SyslogHandshakeFailed) != 0 {
			t.Errorf("stats %+v: a denied sender got as far as the handshake", st)
		}
	})

	t.Run("silent sender", func(t *testing.T) {
		const limit = 300 * time.Millisecond
		r := slStart(t, &SyslogListener{Network: SyslogTLS, TLS: p.creds(t, true), MessageTimeout: limit, IdleTimeout: time.Hour})
		start := time.Now()
		c := slDial(t, "tcp", r.addr(t, "tcp")) // and no handshake
		slClosed(t, c)
		if d := time.Since(start); d < limit {
			t.Errorf("closed after %v, before the limit %v", d, limit)
		}
		r.eventually(t, "the slow handshake to be counted", func(st input.Stats) bool { return st.Counter(SyslogSlow) == 1 })
	})

	t.Run("new credentials", func(t *testing.T) {
		r := slStart(t, &SyslogListener{Network: SyslogTLS, TLS: p.creds(t, true)})
		addr := r.addr(t, "tcp")
		old, err := p.dial(t, addr, p.client)
		if err != nil {
			t.Fatal(err)
		}
		// A renewed server certificate, and a client CA that is now the
		// other one.
		renewed := p.ca.Server(t, "renewed")
		creds, err := LoadSyslogCredentials(SyslogTLSFiles{Cert: renewed.CertFile, Key: renewed.KeyFile, ClientCA: p.other.CertFile})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.l.SetTLS(creds); err != nil {
			t.Fatal(err)
		}
		c, err := p.dial(t, addr, p.stranger)
		if err != nil {
			t.Fatalf("a sender of the new client CA: %v", err)
		}
		if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "renewed" {
			t.Errorf("the listener presents %q, want the renewed certificate", cn)
		}
		slWrite(t, c, slOct("7000 192.0.2.1"))
		r.expect(t, slKnock("192.0.2.1", 7000, sequence.TCP))
		c2, err := p.dial(t, addr, p.client)
		slRefused(t, c2, err)
		// The connection made before goes on.
		slWrite(t, old, slOct("7001 192.0.2.1"))
		r.expect(t, slKnock("192.0.2.1", 7001, sequence.TCP))
	})
}

func TestSyslogSetTLS(t *testing.T) {
	p := newSLPKI(t)
	l := &SyslogListener{Name: "in", Network: SyslogTCP, Addr: "127.0.0.1:0"}
	if err := l.SetTLS(nil); err == nil {
		t.Error("SetTLS(nil) succeeded")
	}
	slNetns(t)
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.SetTLS(p.creds(t, false)); err == nil || !strings.Contains(err.Error(), "not a TLS listener") {
		t.Errorf("SetTLS on a TCP listener: %v", err)
	}
}

// TestSyslogSetTLSBeforeListen: credentials given before Listen are the
// ones the listener starts with, and the TLS field, the caller's, is left
// as it was.
func TestSyslogSetTLSBeforeListen(t *testing.T) {
	slNetns(t)
	p := newSLPKI(t)
	l := &SyslogListener{Network: SyslogTLS}
	if err := l.SetTLS(p.creds(t, false)); err != nil {
		t.Fatal(err)
	}
	if l.TLS != nil {
		t.Error("SetTLS wrote the TLS field")
	}
	r := slStart(t, l)
	c, err := p.dial(t, r.addr(t, "tcp"), nil)
	if err != nil {
		t.Fatalf("handshake with the credentials SetTLS gave: %v", err)
	}
	slWrite(t, c, slOct("7000 192.0.2.1"))
	r.expect(t, slKnock("192.0.2.1", 7000, sequence.TCP))
	if l.TLS != nil {
		t.Error("Listen or Run wrote the TLS field")
	}
}

func TestLoadSyslogCredentials(t *testing.T) {
	p := newSLPKI(t)
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	key := read(p.server.KeyFile)
	openKey := write("open.key", key, 0o644)
	groupKey := write("group.key", key, 0o640)
	writableKey := write("writable.key", key, 0o602)
	empty := write("empty.pem", "no certificate here\n", 0o644)
	// A FIFO named by mistake must be refused, not waited on for a writer.
	fifo := filepath.Join(dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := LoadSyslogCredentials(SyslogTLSFiles{Cert: p.server.CertFile, Key: p.server.KeyFile, ClientCA: p.ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	if !c.ClientCertRequired() || c.Certificate().Subject.CommonName != "server" || c.Files().ClientCA != p.ca.CertFile {
		t.Errorf("credentials: client certs %v, subject %v, files %+v", c.ClientCertRequired(), c.Certificate().Subject, c.Files())
	}
	if c.config.MinVersion != tls.VersionTLS12 {
		t.Errorf("minimum TLS version %x, want 1.2", c.config.MinVersion)
	}
	if c, err := LoadSyslogCredentials(SyslogTLSFiles{Cert: p.server.CertFile, Key: p.server.KeyFile}); err != nil || c.ClientCertRequired() {
		t.Errorf("without a client CA: %v, client certs required %v", err, c != nil && c.ClientCertRequired())
	}

	for _, tc := range []struct {
		name  string
		files SyslogTLSFiles
		want  []string
	}{
		{"no key", SyslogTLSFiles{Cert: p.server.CertFile}, []string{"needs a certificate and a key"}},
		{"key readable by others", SyslogTLSFiles{Cert: p.server.CertFile, Key: openKey}, []string{"tls_key:", openKey, "mode 0644", "chmod 600"}},
		{"key readable by the group", SyslogTLSFiles{Cert: p.server.CertFile, Key: groupKey}, []string{"mode 0640"}},
		{"key writable by others", SyslogTLSFiles{Cert: p.server.CertFile, Key: writableKey}, []string{"mode 0602"}},
		{"missing certificate", SyslogTLSFiles{Cert: filepath.Join(dir, "nope.pem"), Key: p.server.KeyFile}, []string{"tls_cert:", "no such file"}},
		{"key of another certificate", SyslogTLSFiles{Cert: p.server.CertFile, Key: p.client.KeyFile}, []string{"tls_cert", "tls_key", "does not match"}},
		{"directory", SyslogTLSFiles{Cert: dir, Key: p.server.KeyFile}, []string{"not a regular file"}},
		{"FIFO", SyslogTLSFiles{Cert: p.server.CertFile, Key: fifo}, []string{"tls_key:", "not a regular file"}},
		{"client CA without certificates", SyslogTLSFiles{Cert: p.server.CertFile, Key: p.server.KeyFile, ClientCA: empty}, []string{"tls_client_ca:", "no PEM certificate"}},
		{"client CA missing", SyslogTLSFiles{Cert: p.server.CertFile, Key: p.server.KeyFile, ClientCA: filepath.Join(dir, "nope.pem")}, []string{"tls_client_ca:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSyslogCredentials(tc.files)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
