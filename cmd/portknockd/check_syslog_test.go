package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portknock/internal/testpki"
)

const checkDoors = `
[[door]]
name = "ssh"
sequence = ["7000", "9000", "8000"]
start_command = "true"

[[door]]
name = "web"
sequence = ["9100", "9050", "9200"]
start_command = "true"
`

// TestCheckSyslogInputs runs check on syslog inputs: a UDP listener beyond
// loopback is refused, accepted only with accept_spoofable and then
// warned about for each door, and a TLS input's files are read as the
// daemon reads them.
func TestCheckSyslogInputs(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "test")
	server := ca.Server(t, "server")
	openKey := filepath.Join(dir, "open.key")
	key, err := os.ReadFile(server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(openKey, key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openKey, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		input    string
		code     int
		stdout   []string
		stderr   []string
		noStderr bool
	}{
		{
			name:   "spoofable UDP refused",
			input:  "[[input]]\ntype = \"syslog\"\nlisten = \"0.0.0.0:514\"\n",
			code:   1,
			stderr: []string{"check.toml:6: listen:", "UDP senders can be spoofed", "accept_spoofable = true"},
		},
		{
			name:   "spoofable UDP accepted",
			input:  "[[input]]\ntype = \"syslog\"\nlisten = \"0.0.0.0:514\"\naccept_spoofable = true\n",
			stdout: []string{"input syslog:udp:0.0.0.0:514 format auto"},
			stderr: []string{
				`warning: ` + filepath.Join(dir, "check.toml") + `:4: accept_spoofable: door "ssh" takes knocks from syslog:udp:0.0.0.0:514, whose senders can be spoofed`,
				`accept_spoofable: door "web" takes knocks`,
			},
		},
		{
			name:     "TLS",
			input:    fmt.Sprintf("[[input]]\ntype = \"syslog\"\nnetwork = \"tls\"\nlisten = \"0.0.0.0:6514\"\ntls_cert = %q\ntls_key = %q\ntls_client_ca = %q\nprefix = \"knock\"\n", server.CertFile, server.KeyFile, ca.CertFile),
			stdout:   []string{`input syslog:tls:0.0.0.0:6514: certificate "CN=server", valid until `, "senders need a certificate from " + ca.CertFile},
			noStderr: true,
		},
		{
			name:   "TLS key open to others",
			input:  fmt.Sprintf("[[input]]\ntype = \"syslog\"\nnetwork = \"tls\"\ntls_cert = %q\ntls_key = %q\n", server.CertFile, openKey),
			code:   1,
			stdout: []string{"input syslog:tls:127.0.0.1:6514: error: tls_key: " + openKey + " has mode 0644", "chmod 600"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "check.toml")
			if err := os.WriteFile(path, []byte(fmt.Sprintf("[daemon]\nstate_dir = %q\n\n", t.TempDir())+tc.input+checkDoors), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runArgs(t, "", "check", path)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			// The doors run start_command only, and are warned
			// about for it; nothing else may be said.
			if rest := dropLines(errOut, "has no close"); tc.noStderr && rest != "" {
				t.Errorf("stderr: %s", rest)
			}
		})
	}
}

// dropLines returns text without the lines that contain sub.
func dropLines(text, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if !strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}
