package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedExamples adds every example file with one of the suffixes to the
// corpus, so that fuzzing starts from realistic configurations.
func seedExamples(f *testing.F, suffixes ...string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("..", "examples", "*"))
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	for _, name := range files {
		for _, s := range suffixes {
			if strings.HasSuffix(name, s) {
				data, err := os.ReadFile(name)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(data)
				n++
			}
		}
	}
	if n == 0 {
		f.Fatalf("no examples ending in %q to seed from", suffixes)
	}
}

// checkParse checks what must hold for any input: a config that satisfies
// its invariants, or an error made of well-formed problems whose lines
// exist in the input.
func checkParse(t *testing.T, data []byte, format string) {
	c, err := parseAs("f", data, format)
	if err != nil {
		if c != nil {
			t.Fatal("config returned with an error")
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		var list []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		} else {
			list = []error{err}
		}
		for _, e := range list {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Fatalf("problem %q is a %T", e, e)
			}
			if ce.Line < 0 || ce.Line > lines {
				t.Fatalf("problem %q names line %d of %d", e, ce.Line, lines)
			}
			if !strings.HasPrefix(e.Error(), "f") {
				t.Fatalf("problem %q does not name the file", e)
			}
		}
		return
	}
	if c.Format != format {
		t.Fatalf("format %q, want %q", c.Format, format)
	}
	checkInvariants(t, c)
	DetectFormat("f", data)
}

func FuzzParseTOML(f *testing.F) {
	seedExamples(f, ".toml")
	f.Add([]byte(okDoor + "[door.x]\ny = 1\n"))
	f.Add([]byte("door = [{name = \"a\", sequence = [\"1\"], command = [\"x\"]}]\n"))
	f.Add([]byte("[[input]]\ntype = \"nflog\"\ngroups = [1, 2]\n" + okDoor))
	f.Add([]byte("[[input]]\ntype = \"syslog\"\nnetwork = \"tls\"\nlisten = \"[::]:6514\"\ntls_cert = \"c\"\ntls_key = \"k\"\n" +
		"tls_client_ca = \"ca\"\nmessage_time_limit = \"5s\"\nidle_time_limit = 60\n" + okDoor))
	f.Add([]byte("[[input]]\ntype = \"syslog\"\nlisten = \"0.0.0.0:514\"\naccept_spoofable = true\n" + okDoor))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data, FormatTOML)
	})
}

func FuzzParseKnockd(f *testing.F) {
	seedExamples(f, ".conf", "_sequences")
	f.Add([]byte("[options]\nUseSyslog\nInterface = eth0\n[a]\nsequence = 1:udp,2/tcp\ncommand_6 =\ncommand = x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data, FormatKnockd)
	})
}

// FuzzParseInputSpec: any -i spec is either refused or a valid input.
func FuzzParseInputSpec(f *testing.F) {
	for _, s := range []string{"-", "nflog:5,6", "text:netfilter:/var/log/kern.log", "text:a:b", "/run/k.fifo", "nflog:", "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		in, err := ParseInputSpec(spec)
		if err != nil {
			return
		}
		if verr := in.Validate(); verr != nil {
			t.Fatalf("ParseInputSpec(%q) = %+v, which does not validate: %v", spec, in, verr)
		}
	})
}
