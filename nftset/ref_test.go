package nftset

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	long := strings.Repeat("a", maxNameLen)
	tests := []struct {
		in   string
		want Ref
		err  string // part of the error; "" when parsing succeeds
	}{
		{in: "inet fw knock4", want: Ref{FamilyInet, "fw", "knock4"}},
		{in: "ip filter allow", want: Ref{FamilyIP, "filter", "allow"}},
		{in: "ip6 filter allow6", want: Ref{FamilyIP6, "filter", "allow6"}},
		{in: "  inet\tfw \t knock4\n", want: Ref{FamilyInet, "fw", "knock4"}},
		{in: "inet _t .s", want: Ref{FamilyInet, "_t", ".s"}},
		{in: "inet my-fw knock/v4.x_1", want: Ref{FamilyInet, "my-fw", "knock/v4.x_1"}},
		{in: "inet FW Knock", want: Ref{FamilyInet, "FW", "Knock"}},
		{in: "inet " + long + " " + long, want: Ref{FamilyInet, long, long}},

		{in: "", err: `want "family table set"`},
		{in: "   ", err: `want "family table set"`},
		{in: "knock4", err: `want "family table set"`},
		{in: "fw knock4", err: `the family is missing: write "ip fw knock4", "ip6 fw knock4" or "inet fw knock4"`},
		{in: " fw\tknock4 ", err: `the family is missing: write "ip fw knock4", "ip6 fw knock4" or "inet fw knock4"`},
		{in: "inet fw knock4 extra", err: `want "family table set"`},
		{in: "inet fw { knock4 }", err: `want "family table set"`},
		{in: "bridge br knock4", err: "family bridge is not supported for knock sets (want ip, ip6 or inet)"},
		{in: "netdev ingress knock4", err: "family netdev is not supported"},
		{in: "arp a knock4", err: "family arp is not supported"},
		{in: "INET fw knock4", err: `unknown family "INET"`},
		{in: "ipv4 fw knock4", err: `unknown family "ipv4"`},
		{in: "inet 1fw knock4", err: `table name: "1" at byte 0`},
		{in: "inet -fw knock4", err: `table name: "-" at byte 0`},
		{in: "inet fw knock4;", err: `set name: ";" at byte 6`},
		{in: `inet fw "knock4"`, err: `set name: "\"" at byte 0`},
		{in: "inet fw kn\x00ock", err: `set name: "\x00" at byte 2`},
		{in: "inet fw knöck", err: `set name: "ö" at byte 2`},
		{in: "inet fw kn\xc3ck", err: `set name: "\xc3" at byte 2`},
		{in: "inet fw $set", err: `set name: "$" at byte 0`},
		{in: "inet " + long + "a fw", err: "table name: 256 bytes long, the kernel allows 255"},
		{in: "inet fw " + long + "a", err: "set name: 256 bytes long"},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.err != "" {
			if err == nil {
				t.Errorf("ParseRef(%q) = %+v, want an error containing %q", tt.in, got, tt.err)
				continue
			}
			if !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "nft set ") {
				t.Errorf("ParseRef(%q) error %q, want it to start with \"nft set \" and contain %q", tt.in, err, tt.err)
			}
			if got != (Ref{}) {
				t.Errorf("ParseRef(%q) returned %+v with its error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if back, err := ParseRef(got.String()); err != nil || back != got {
			t.Errorf("ParseRef(%q).String() = %q reads back as %+v, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestRefString(t *testing.T) {
	for _, tt := range []struct {
		r    Ref
		want string
	}{
		{Ref{FamilyIP, "filter", "allow"}, "ip filter allow"},
		{Ref{FamilyIP6, "filter", "allow6"}, "ip6 filter allow6"},
		{Ref{FamilyInet, "fw", "knock4"}, "inet fw knock4"},
		{Ref{}, "family(0)  "},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

// A Ref built by hand reaches the kernel only through validate.
func TestRefValidate(t *testing.T) {
	for _, tt := range []struct {
		r   Ref
		err string
	}{
		{Ref{FamilyInet, "fw", "knock4"}, ""},
		{Ref{}, "invalid family"},
		{Ref{Family: 4, Table: "fw", Set: "s"}, "invalid family"},
		{Ref{FamilyInet, "", "knock4"}, "table name: empty"},
		{Ref{FamilyInet, "fw", ""}, "set name: empty"},
		{Ref{FamilyInet, "fw", "a b"}, `set name: " " at byte 1`},
	} {
		err := tt.r.validate()
		if tt.err == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.r, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%+v: error %v, want one containing %q", tt.r, err, tt.err)
		}
	}
}

// FuzzParseRef checks that no input panics, that a parsed Ref is valid,
// and that its String reads back as the same Ref.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"inet fw knock4", "ip filter allow", "ip6 filter allow6", "fw knock4",
		"bridge br s", " inet\tfw\nknock4 ", "inet fw kn\x00ock", "inet .a _b-/9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if r != (Ref{}) {
				t.Fatalf("ParseRef(%q) returned %+v with error %v", s, r, err)
			}
			if !strings.HasPrefix(err.Error(), "nft set ") {
				t.Fatalf("ParseRef(%q) error %q does not start with \"nft set \"", s, err)
			}
			return
		}
		if err := r.validate(); err != nil {
			t.Fatalf("ParseRef(%q) = %+v, which is invalid: %v", s, r, err)
		}
		if got := strings.Join(strings.Fields(s), " "); got != r.String() {
			t.Fatalf("ParseRef(%q).String() = %q, want the input's words %q", s, r.String(), got)
		}
		back, err := ParseRef(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRef(%q) = %+v, but its String %q reads back as %+v, %v", s, r, r.String(), back, err)
		}
	})
}
