package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTOMLSyslogTLS(t *testing.T) {
	c, err := Parse("/etc/pk/t.toml", []byte(`[[input]]
type = "syslog"
network = "tls"
tls_cert = "syslog.pem"
tls_key = "/secret/syslog.key"
tls_client_ca = "ca/relays.pem"
message_time_limit = "5s"
idle_time_limit = 600
prefix = "knock"
`+okDoor))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Inputs[0]
	want := Input{
		Line: 1, Type: InputSyslog, Format: DefaultTextFormat, Network: SyslogTLS, Listen: DefaultSyslogTLSListen,
		TLSCert: "/etc/pk/syslog.pem", TLSKey: "/secret/syslog.key", TLSClientCA: "/etc/pk/ca/relays.pem",
		MessageTimeLimit: 5 * time.Second, IdleTimeLimit: 10 * time.Minute, Prefix: "knock",
	}
	if in.String() != "syslog:tls:127.0.0.1:6514" || in.TLSCert != want.TLSCert || in.TLSKey != want.TLSKey ||
		in.TLSClientCA != want.TLSClientCA || in.Listen != want.Listen || in.MessageTimeLimit != want.MessageTimeLimit ||
		in.IdleTimeLimit != want.IdleTimeLimit || in.Spoofable() {
		t.Errorf("input %+v\nwant  %+v", in, want)
	}
	if err := in.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestTOMLSyslogErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "UDP beyond loopback",
			src:  "[[input]]\ntype = \"syslog\"\nlisten = \"0.0.0.0:514\"\n",
			want: []string{`t.toml:3: listen: a UDP syslog listener on 0.0.0.0:514 cannot tell a real sender from a forged one: UDP senders can be spoofed`},
		},
		{
			name: "UDP on a named host",
			src:  "[[input]]\ntype = \"syslog\"\nnetwork = \"udp\"\nlisten = \"fw.example:514\"\n",
			want: []string{`t.toml:4: listen: a UDP syslog listener on fw.example:514`},
		},
		{
			name: "UDP on all IPv6 addresses, allow list or not",
			src:  "[[input]]\ntype = \"syslog\"\nlisten = \"[::]:514\"\nallow = [\"2001:db8::1\"]\naccept_spoofable = false\n",
			want: []string{`t.toml:3: listen: a UDP syslog listener on [::]:514`},
		},
		{
			name: "TLS without its files",
			src:  "[[input]]\ntype = \"syslog\"\nnetwork = \"tls\"\ntls_client_ca = \"ca.pem\"\n",
			want: []string{
				`t.toml:1: tls_cert: missing: a syslog input with network = "tls" needs tls_cert and tls_key`,
				`t.toml:1: tls_key: missing`,
			},
		},
		{
			name: "TLS files without TLS",
			src:  "[[input]]\ntype = \"syslog\"\nnetwork = \"tcp\"\ntls_cert = \"a.pem\"\ntls_client_ca = \"ca.pem\"\n",
			want: []string{
				`t.toml:4: tls_cert: only a syslog input with network = "tls" takes this key`,
				`t.toml:5: tls_client_ca: only a syslog input with network = "tls" takes this key`,
			},
		},
		{
			name: "bad values",
			src: "[[input]]\ntype = \"syslog\"\nnetwork = \"tls\"\ntls_cert = \"\"\ntls_key = 5\naccept_spoofable = \"yes\"\n" +
				"message_time_limit = \"11m\"\nidle_time_limit = \"-1s\"\n",
			want: []string{
				`t.toml:4: tls_cert: must not be empty`,
				`t.toml:5: tls_key: want a string, got integer 5`,
				`t.toml:6: accept_spoofable: want true or false, got string "yes"`,
				`t.toml:7: message_time_limit: 11m0s is longer than the 10m0s allowed`,
				`t.toml:8: idle_time_limit: must be positive`,
			},
		},
		{
			name: "syslog keys on other inputs",
			src:  "[[input]]\ntype = \"text\"\npath = \"-\"\naccept_spoofable = true\ntls_key = \"k\"\nidle_time_limit = \"1m\"\n",
			want: []string{
				`t.toml:4: accept_spoofable: only syslog inputs take this key`,
				`t.toml:5: tls_key: only syslog inputs take this key`,
				`t.toml:6: idle_time_limit: only syslog inputs take this key`,
			},
		},
		{
			name: "misspelled",
			src:  "[[input]]\ntype = \"syslog\"\naccept_spofable = true\n",
			want: []string{`t.toml:3: accept_spofable: unknown key in [[input]] (did you mean "accept_spoofable"?)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAs("t.toml", []byte(tc.src+okDoor), FormatTOML)
			checkProblems(t, problemList(t, err), tc.want)
		})
	}
}

// TestTOMLSyslogSpoofable checks what accept_spoofable allows and what
// it costs: a warning for every door the input feeds.
func TestTOMLSyslogSpoofable(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "accepted, two doors",
			src: "[[input]]\ntype = \"syslog\"\nlisten = \"192.0.2.10:5514\"\nallow = [\"192.0.2.1\"]\naccept_spoofable = true\n" + "prefix = \"knock\"\n" + okDoor +
				"[[door]]\nname = \"web\"\nsequence = [\"5\", \"4\", \"6\"]\ncommand = \"true\"\n",
			want: []string{
				`t.toml:1: accept_spoofable: door "ok" takes knocks from syslog:udp:192.0.2.10:5514, whose senders can be spoofed: anyone who can reach it can knock the door open for any address`,
				`t.toml:1: accept_spoofable: door "web" takes knocks from syslog:udp:192.0.2.10:5514, whose senders can be spoofed: anyone who can reach it can knock the door open for any address`,
			},
		},
		{
			name: "loopback UDP needs no flag",
			src:  "[[input]]\ntype = \"syslog\"\nlisten = \"[::1]:5514\"\n" + "prefix = \"knock\"\n" + okDoor,
		},
		{
			name: "flag without effect: loopback",
			src:  "[[input]]\ntype = \"syslog\"\nlisten = \"127.0.0.1:5514\"\naccept_spoofable = true\n" + "prefix = \"knock\"\n" + okDoor,
			want: []string{`t.toml:4: accept_spoofable: has no effect: only a UDP listener beyond loopback has spoofable senders`},
		},
		{
			name: "flag without effect: TCP",
			src:  "[[input]]\ntype = \"syslog\"\nnetwork = \"tcp\"\nlisten = \"0.0.0.0:5514\"\naccept_spoofable = true\n" + "prefix = \"knock\"\n" + okDoor,
			want: []string{`t.toml:5: accept_spoofable: has no effect: only a UDP listener beyond loopback has spoofable senders`},
		},
		{
			name: "time limits on UDP",
			src:  "[[input]]\ntype = \"syslog\"\nmessage_time_limit = \"5s\"\n" + "prefix = \"knock\"\n" + okDoor,
			want: []string{`t.toml:3: message_time_limit: has no effect on UDP, which has no connections`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseAs("t.toml", []byte(tc.src), FormatTOML)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Warnings, tc.want) {
				t.Errorf("warnings:\n\t%s\nwant\n\t%s", strings.Join(c.Warnings, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

func TestSyslogInputValidate(t *testing.T) {
	base := Input{Type: InputSyslog, Network: SyslogUDP, Listen: "127.0.0.1:514", Format: DefaultTextFormat}
	for _, tc := range []struct {
		name string
		edit func(*Input)
		want string // "" for valid
	}{
		{"loopback UDP", func(*Input) {}, ""},
		{"wildcard UDP", func(in *Input) { in.Listen = ":514" }, "UDP senders can be spoofed"},
		{"wildcard UDP accepted", func(in *Input) { in.Listen = ":514"; in.AcceptSpoofable = true }, ""},
		{"wildcard TCP", func(in *Input) { in.Listen = ":514"; in.Network = SyslogTCP }, ""},
		{"TLS without key", func(in *Input) { in.Network = SyslogTLS; in.TLSCert = "c" }, "needs tls_cert and tls_key"},
		{"TLS", func(in *Input) { in.Network = SyslogTLS; in.TLSCert, in.TLSKey = "c", "k" }, ""},
		{"CA without TLS", func(in *Input) { in.TLSClientCA = "ca" }, "only a syslog input with network"},
		{"network", func(in *Input) { in.Network = "dccp" }, `syslog network "dccp"`},
		{"message limit", func(in *Input) { in.MessageTimeLimit = time.Hour }, "message_time_limit"},
		{"idle limit", func(in *Input) { in.IdleTimeLimit = -time.Second }, "idle_time_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.edit(&in)
			err := in.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
