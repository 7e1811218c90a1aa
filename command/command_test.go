package command

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestSubstitute(t *testing.T) {
	v := Vars{IP: netip.MustParseAddr("::ffff:192.0.2.7"), Door: "ssh", Port: 9000, Proto: "udp"}
	tests := []struct {
		name string
		cmd  Command
		v    Vars
		want Command
	}{
		{"shell", Command{Shell: "allow %IP% %DOOR% %PORT%/%PROTO%"}, v, Command{Shell: "allow 192.0.2.7 ssh 9000/udp"}},
		{"argv never split", Command{Argv: []string{"x", "a %IP% b"}}, v, Command{Argv: []string{"x", "a 192.0.2.7 b"}}},
		{"zone dropped", Command{Shell: "%IP%"}, Vars{IP: netip.MustParseAddr("fe80::1%eth0;reboot")}, Command{Shell: "fe80::1"}},
		{"other protocol prints nothing", Command{Shell: "x%PROTO%x"}, Vars{Proto: "proto(9)"}, Command{Shell: "xx"}},
		{"no address, no port", Command{Shell: "[%IP%][%PORT%]"}, Vars{}, Command{Shell: "[][]"}},
		{"nothing", Command{}, v, Command{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.cmd.Argv)
			got := Substitute(tt.cmd, tt.v)
			if got.Shell != tt.want.Shell || !slices.Equal(got.Argv, tt.want.Argv) {
				t.Errorf("Substitute = %#v, want %#v", got, tt.want)
			}
			if !slices.Equal(tt.cmd.Argv, orig) {
				t.Errorf("Substitute changed its input argv to %q", tt.cmd.Argv)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cmd Command
		ok  bool
	}{
		{Command{}, true},
		{Command{Shell: "true"}, true},
		{Command{Argv: []string{"true"}}, true},
		{Command{Shell: "true", Argv: []string{"true"}}, false},
		{Command{Argv: []string{"", "x"}}, false},
	}
	for _, tt := range tests {
		if err := tt.cmd.Validate(); (err == nil) != tt.ok {
			t.Errorf("%#v.Validate() = %v, want ok=%v", tt.cmd, err, tt.ok)
		}
	}
}

func TestStringAndClone(t *testing.T) {
	c := Command{Argv: []string{"/usr/sbin/nft", "add element { 1 }", ""}}
	if got, want := c.String(), `/usr/sbin/nft "add element { 1 }" ""`; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
	d := c.Clone()
	d.Argv[0] = "changed"
	if c.Argv[0] != "/usr/sbin/nft" {
		t.Error("Clone shares its argv with the original")
	}
}

// TestSubstituteLikeReplacer: Substitute does what a strings.Replacer of
// the four placeholders does, on odd arrangements of '%' too.
func TestSubstituteLikeReplacer(t *testing.T) {
	v := Vars{IP: netip.MustParseAddr("2001:db8::1"), Door: "%IP%door", Port: 22, Proto: "tcp"}
	r := strings.NewReplacer("%IP%", "2001:db8::1", "%DOOR%", "%IP%door", "%PORT%", "22", "%PROTO%", "tcp")
	for _, s := range []string{
		"", "%", "%%", "%%IP%", "%IP", "IP%", "%IP%%IP%", "%DOOR%%PORT%%PROTO%", "100%", "%ip% %Ip%",
		"a%IP%b%DOOR%c%PORT%d%PROTO%e", "%PORT%%", "%%%PROTO%%%", "%P%PORT%",
	} {
		if got, want := Substitute(Command{Shell: s}, v).Shell, r.Replace(s); got != want {
			t.Errorf("Substitute(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzSubstitute(f *testing.F) {
	f.Add("allow %IP% %DOOR% %PORT%/%PROTO%", "ssh")
	f.Add("%%IP%%", "%PORT%")
	f.Fuzz(func(t *testing.T, s, door string) {
		v := Vars{IP: netip.MustParseAddr("192.0.2.1"), Door: door, Port: 7000, Proto: "udp"}
		r := strings.NewReplacer("%IP%", "192.0.2.1", "%DOOR%", door, "%PORT%", "7000", "%PROTO%", "udp")
		if got, want := Substitute(Command{Shell: s}, v).Shell, r.Replace(s); got != want {
			t.Errorf("Substitute(%q) = %q, want %q", s, got, want)
		}
	})
}
