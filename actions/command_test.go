package actions

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"portknock/sequence"
)

func TestSubstitute(t *testing.T) {
	match := func(src string, port uint16, proto sequence.Proto) sequence.Match {
		return sequence.Match{
			Door: "ssh",
			Src:  netip.MustParseAddr(src),
			Last: sequence.Step{Port: port, Proto: proto},
		}
	}
	tests := []struct {
		name string
		cmd  Command
		m    sequence.Match
		want Command
	}{
		{
			name: "shell ipv4",
			cmd:  Command{Shell: "nft add element inet fw knock4 { %IP% } # %DOOR% %PORT%/%PROTO%"},
			m:    match("192.0.2.7", 9000, sequence.UDP),
			want: Command{Shell: "nft add element inet fw knock4 { 192.0.2.7 } # ssh 9000/udp"},
		},
		{
			name: "shell ipv6 compressed",
			cmd:  Command{Shell: "ip6tables -I INPUT -s %IP% -j ACCEPT"},
			m:    match("2001:0db8:0000:0000:0000:0000:0000:0001", 7000, sequence.TCP),
			want: Command{Shell: "ip6tables -I INPUT -s 2001:db8::1 -j ACCEPT"},
		},
		{
			name: "ipv4-mapped ipv6 is unmapped",
			cmd:  Command{Shell: "allow %IP%"},
			m:    match("::ffff:192.0.2.9", 7000, sequence.TCP),
			want: Command{Shell: "allow 192.0.2.9"},
		},
		{
			// A zone is free text after '%'; it must never reach a shell.
			name: "zone removed",
			cmd:  Command{Shell: "allow %IP%"},
			m:    match("fe80::1%eth0;reboot", 7000, sequence.TCP),
			want: Command{Shell: "allow fe80::1"},
		},
		{
			name: "repeated placeholders",
			cmd:  Command{Shell: "%IP% %IP% %DOOR%%DOOR%"},
			m:    match("198.51.100.1", 1, sequence.TCP),
			want: Command{Shell: "198.51.100.1 198.51.100.1 sshssh"},
		},
		{
			name: "argv elements substituted, never split",
			cmd:  Command{Argv: []string{"/usr/sbin/nft", "add element inet fw knock6 { %IP% }", "%PORT%", "%PROTO%", "%DOOR%"}},
			m:    match("2001:db8::42", 8000, sequence.UDP),
			want: Command{Argv: []string{"/usr/sbin/nft", "add element inet fw knock6 { 2001:db8::42 }", "8000", "udp", "ssh"}},
		},
		{
			name: "invalid protocol prints nothing",
			cmd:  Command{Shell: "x%PROTO%x"},
			m:    match("192.0.2.1", 1, sequence.Proto(9)),
			want: Command{Shell: "xx"},
		},
		{
			name: "unknown placeholders kept",
			cmd:  Command{Shell: "printf '%s %d' %ip% %IP"},
			m:    match("192.0.2.1", 1, sequence.TCP),
			want: Command{Shell: "printf '%s %d' %ip% %IP"},
		},
		{
			name: "no command",
			cmd:  Command{},
			m:    match("192.0.2.1", 1, sequence.TCP),
			want: Command{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.cmd.Argv)
			got := Substitute(tt.cmd, tt.m)
			if got.Shell != tt.want.Shell || !slices.Equal(got.Argv, tt.want.Argv) {
				t.Errorf("Substitute = %#v, want %#v", got, tt.want)
			}
			if !slices.Equal(tt.cmd.Argv, orig) {
				t.Errorf("Substitute changed its input argv to %q", tt.cmd.Argv)
			}
		})
	}
}

func TestCommandsFor(t *testing.T) {
	full := Door{
		Start: Command{Shell: "start4"}, Start6: Command{Shell: "start6"},
		Stop: Command{Argv: []string{"stop4"}}, Stop6: Command{Argv: []string{"stop6"}},
	}
	only4 := Door{Start: Command{Shell: "start4"}, Stop: Command{Argv: []string{"stop4"}}}
	startOnly6 := Door{Start: Command{Shell: "start4"}, Start6: Command{Shell: "start6"}, Stop: Command{Shell: "stop4"}}
	tests := []struct {
		name                string
		door                Door
		src                 string
		wantStart, wantStop string
	}{
		{"v4 source uses plain commands", full, "192.0.2.1", "start4", "stop4"},
		{"v6 source uses _6 commands", full, "2001:db8::1", "start6", "stop6"},
		{"mapped v4 source uses plain commands", full, "::ffff:192.0.2.1", "start4", "stop4"},
		{"v6 source without _6 runs nothing", only4, "2001:db8::1", "", ""},
		{"each _6 stands on its own", startOnly6, "2001:db8::1", "start6", ""},
		{"v4 source ignores _6", startOnly6, "192.0.2.1", "start4", "stop4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, stop := tt.door.commandsFor(netip.MustParseAddr(tt.src))
			if start.String() != tt.wantStart || stop.String() != tt.wantStop {
				t.Errorf("commandsFor(%s) = %s, %s; want %s, %s", tt.src, start, stop, tt.wantStart, tt.wantStop)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"short", []string{"hello ", "world"}, "hello world"},
		{"exactly full", []string{strings.Repeat("a", outputTail)}, strings.Repeat("a", outputTail)},
		{"one big write keeps its end", []string{strings.Repeat("a", 1000) + "END"}, "…" + strings.Repeat("a", outputTail-3) + "END"},
		{"many small writes keep the last bytes", []string{strings.Repeat("x", 400), strings.Repeat("y", 400), "END"}, "…" + strings.Repeat("x", 400-291) + strings.Repeat("y", 400) + "END"},
		{"full write after earlier output", []string{"early", strings.Repeat("b", outputTail)}, "…" + strings.Repeat("b", outputTail)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tb tailBuffer
			for _, w := range tt.writes {
				if n, err := tb.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(w))
				}
			}
			if got := tb.String(); got != tt.want {
				t.Errorf("tail = %q (%d bytes), want %q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
		})
	}
}
