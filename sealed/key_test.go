package sealed

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseKey(t *testing.T) {
	k := vectorKey()
	tests := []struct {
		name    string
		data    string
		wantErr string // "" for success, else a substring of the error
	}{
		{"bare", vectorKeyFile, ""},
		{"newline", vectorKeyFile + "\n", ""},
		{"crlf and comments", "# made by portknock keygen\r\n\r\n" + vectorKeyFile + "\r\n# trailing comment\r\n", ""},
		{"indented", "  \t" + vectorKeyFile + "  \n", ""},
		{"indented comment", "   # note\n" + vectorKeyFile, ""},
		{"empty", "", "no key line"},
		{"only comments", "# a\n\n# b\n", "no key line"},
		{"two keys", vectorKeyFile + "\n" + vectorKeyFile + "\n", "line 2: a second key line (the first is on line 1"},
		{"short", base64.StdEncoding.EncodeToString(k[:31]), "line 1: 31 bytes, want 32"},
		{"long", base64.StdEncoding.EncodeToString(append(k[:], 0)), "line 1: 33 bytes, want 32"},
		{"far too long", strings.Repeat("A", 65), "65 characters is too long"},
		{"unpadded", strings.TrimRight(vectorKeyFile, "="), "not standard base64"},
		{"url alphabet", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "column 1"},
		{"comment after key", vectorKeyFile + " # mine", "not standard base64"},
		{"hex instead", hex.EncodeToString(k[:]), "line 1: 48 bytes, want 32"},
		{"all zero", base64.StdEncoding.EncodeToString(make([]byte, 32)), "all zero bytes"},
		{"nul", "\x00", "not standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey([]byte(tt.data))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if got != k {
					t.Fatalf("ParseKey = %x, want %x", got[:], k[:])
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseKey accepted %q", tt.data)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseKey error %q, want it to contain %q", err, tt.wantErr)
			}
			if got != (Key{}) {
				t.Errorf("ParseKey returned a key with its error")
			}
			if strings.Contains(err.Error(), vectorKeyFile[:8]) {
				t.Errorf("error %q echoes key material", err)
			}
		})
	}
}

func TestKeyMarshalRoundTrip(t *testing.T) {
	k := vectorKey()
	text, err := k.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "# ") || !strings.HasSuffix(string(text), "\n"+vectorKeyFile+"\n") {
		t.Fatalf("MarshalText = %q, want a # header and the key on its own last line", text)
	}
	var back Key
	if err := back.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if back != k {
		t.Fatalf("round trip gave %x, want %x", back[:], k[:])
	}
	if err := back.UnmarshalText([]byte("# none\n")); err == nil {
		t.Fatal("UnmarshalText accepted a file without a key")
	}
	if back != k {
		t.Fatal("a failed UnmarshalText changed the key")
	}
}

func TestNewKey(t *testing.T) {
	src := bytes.NewReader(bytes.Repeat([]byte{7}, 40))
	k, err := NewKey(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := Key(bytes.Repeat([]byte{7}, 32)); k != want {
		t.Fatalf("NewKey = %x, want %x", k[:], want[:])
	}
	if src.Len() != 8 {
		t.Errorf("NewKey read %d bytes, want 32", 40-src.Len())
	}

	if _, err := NewKey(bytes.NewReader(make([]byte, 31))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("NewKey on a short reader: %v, want ErrUnexpectedEOF", err)
	}
	if _, err := NewKey(iotest.ErrReader(errors.New("boom"))); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("NewKey on a failing reader: %v", err)
	}
	if _, err := NewKey(bytes.NewReader(make([]byte, 32))); err == nil {
		t.Error("NewKey accepted an all-zero key")
	}

	a, err := NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two keys from crypto/rand are equal")
	}
}

// TestKeyRedacted checks that the ways a key usually reaches a log line or
// an error message show no key material.
func TestKeyRedacted(t *testing.T) {
	k := vectorKey()
	type config struct {
		Name string
		Key  Key
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, config{"door", k}), fmt.Sprintf(verb, &k))
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", k)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", k)
	outs = append(outs, buf.String())

	b64 := vectorKeyFile[:12]
	hx := hex.EncodeToString(k[:6])
	for _, out := range outs {
		if !strings.Contains(out, "redacted") {
			t.Errorf("%q does not say the key is redacted", out)
		}
		if strings.Contains(strings.ToLower(out), hx) || strings.Contains(out, b64) || strings.Contains(out, "[0 1 2 3") {
			t.Errorf("%q shows key material", out)
		}
	}
}
