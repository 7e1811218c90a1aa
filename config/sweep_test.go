package config

import (
	"maps"
	"strings"
	"testing"
)

func TestSweptDoors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doors string // [[door]] tables
		want  map[string]string
	}{
		{"rising", door("a", `"7000", "8000", "9000"`), map[string]string{"a": "rising TCP"}},
		{"falling", door("a", `"9000", "8000", "7000"`), map[string]string{"a": "falling TCP"}},
		{"one knock", door("a", `"7000"`), map[string]string{"a": "rising TCP"}},
		{"udp", door("a", `"7000/udp", "8000/udp"`), map[string]string{"a": "rising UDP"}},
		{"mixed protocols", door("a", `"7000/tcp", "8000/tcp", "9000/udp"`), map[string]string{"a": "rising TCP+UDP"}},
		{"out of order", door("a", `"7000", "9000/udp", "8000"`), map[string]string{}},
		{"out of order, one protocol", door("a", `"8000", "7000", "9000"`), map[string]string{}},
		// Door b's 8000 lies between a's knocks: any sweep through a's
		// range knocks it and resets a.
		{"another door breaks the run", door("a", `"7000", "9000"`) + door("b", `"8000", "1000"`), map[string]string{}},
		{"another door's other protocol does not", door("a", `"7000", "9000"`) + door("b", `"8000/udp", "1000/udp"`),
			map[string]string{"a": "rising TCP", "b": "falling UDP"}},
		// A SYN sweep does not pass tcpflags = ack; ACK scans are rare.
		{"tcpflags", door("a", `"7000", "8000"`) + "tcpflags = \"ack\"\n", map[string]string{}},
		{"target", door("a", `"7000", "8000"`) + "target = \"192.0.2.1\"\n", map[string]string{"a": "rising TCP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tc.doors))
			if err != nil {
				t.Fatal(err)
			}
			got := sweptDoors(c.Doors)
			if got == nil {
				got = map[string]string{}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("swept %v, want %v", got, tc.want)
			}
			for name := range tc.want {
				if !strings.Contains(strings.Join(c.Warnings, "\n"), `door "`+name+`"`) {
					t.Errorf("no warning names door %q: %q", name, c.Warnings)
				}
			}
		})
	}
}

func door(name, steps string) string {
	return "[[door]]\nname = \"" + name + "\"\nsequence = [" + steps + "]\nstart_command = \"true\"\n"
}

func TestInputWithoutPrefixWarns(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[[input]]
type = "text"
path = "/var/log/kern.log"

[[input]]
type = "text"
path = "/var/log/syslog"
prefix = "knock"

[[input]]
type = "text"
path = "-"
format = "simple"

[[input]]
type = "nflog"
groups = [5]
`+door("a", `"7000", "9000", "8000"`)))
	if err != nil {
		t.Fatal(err)
	}
	want := "t.toml:2: prefix: input text:/var/log/kern.log has no prefix"
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], want) {
		t.Errorf("warnings %q, want one starting %q", c.Warnings, want)
	}
	in, err := ParseInputSpec("/var/log/messages")
	if err != nil {
		t.Fatal(err)
	}
	if w := InputWarnings([]Input{in}); len(w) != 1 || !strings.HasPrefix(w[0], "-i: prefix: input text:/var/log/messages has no prefix") {
		t.Errorf("command-line input warnings %q", w)
	}
}
