package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"portknock/textlog"
)

// The values of Input.Network.
const (
	SyslogUDP = "udp"
	SyslogTCP = "tcp"
	// SyslogTLS is RFC 5425, syslog over TLS.
	SyslogTLS = "tls"
)

// DefaultSyslogTLSListen is where a TLS syslog input listens unless told:
// loopback, on the port RFC 5425 gives syslog over TLS.
const DefaultSyslogTLSListen = "127.0.0.1:6514"

// Upper bounds on a syslog input's time limits, so that a typo cannot
// hand a slot to a silent sender for days.
const (
	MaxMessageTimeLimit = 10 * time.Minute
	MaxIdleTimeLimit    = 24 * time.Hour
)

// syslogNetworks lists the accepted Input.Network values.
func syslogNetworks() []string { return []string{SyslogUDP, SyslogTCP, SyslogTLS} }

// tomlSyslogKeys are the [[input]] keys of syslog inputs beyond listen,
// network and allow.
func tomlSyslogKeys() []string {
	return []string{"accept_spoofable", "tls_cert", "tls_key", "tls_client_ca", "message_time_limit", "idle_time_limit"}
}

// Spoofable reports whether the input takes sender addresses that anyone
// can forge: a UDP syslog listener reachable from beyond this host.
func (in *Input) Spoofable() bool {
	return in.Type == InputSyslog && in.Network == SyslogUDP && !textlog.LoopbackListen(in.Listen)
}

// spoofableMessage is the refusal of a spoofable input, fit to follow
// "file:line: key: ".
func spoofableMessage(in *Input) string {
	return fmt.Sprintf("a UDP syslog listener on %s cannot tell a real sender from a forged one: UDP senders can be spoofed, "+
		"so anyone who can reach it can knock in the name of an allowed sender. Listen on loopback, use network = %q or %q, "+
		"or set accept_spoofable = true to accept spoofable senders", in.Listen, SyslogTCP, SyslogTLS)
}

// syslogKey reads one of tomlSyslogKeys into in, and reports false for
// any other key.
func (r *tomlReader) syslogKey(in *Input, key string, v any, line int, onlyFor func(string, ...string) bool) bool {
	switch key {
	case "accept_spoofable":
		b, ok := v.(bool)
		if !ok {
			r.pr.errorf(line, key, "want true or false, got %s", typeName(v))
		} else if onlyFor(key, InputSyslog) {
			in.AcceptSpoofable = b
		}
	case "tls_cert", "tls_key", "tls_client_ca":
		s, ok := r.str(v, line, key)
		if !ok || !onlyFor(key, InputSyslog) {
			break
		}
		if s == "" {
			r.pr.errorf(line, key, "must not be empty")
		}
		switch key {
		case "tls_cert":
			in.TLSCert = s
		case "tls_key":
			in.TLSKey = s
		default:
			in.TLSClientCA = s
		}
	case "message_time_limit", "idle_time_limit":
		t, ok := r.duration(v, line, key)
		if !ok || !onlyFor(key, InputSyslog) {
			break
		}
		limit := MaxMessageTimeLimit
		if key == "idle_time_limit" {
			limit = MaxIdleTimeLimit
		}
		if t > limit {
			r.pr.errorf(line, key, "%v is longer than the %v allowed", t, limit)
			break
		}
		if key == "message_time_limit" {
			in.MessageTimeLimit = t
		} else {
			in.IdleTimeLimit = t
		}
	default:
		return false
	}
	return true
}

// finishSyslog applies a syslog input's defaults and the checks that
// involve several of its keys; keyLine finds the line of a key, or 0.
func (r *tomlReader) finishSyslog(in *Input, keyLine func(string) int) {
	at := func(key string) int {
		if l := keyLine(key); l > 0 {
			return l
		}
		return in.Line
	}
	if in.Network == "" {
		in.Network = SyslogUDP
	}
	if in.Listen == "" {
		in.Listen = DefaultSyslogListen
		if in.Network == SyslogTLS {
			in.Listen = DefaultSyslogTLSListen
		}
	}
	if _, _, err := net.SplitHostPort(in.Listen); err != nil || !slices.Contains(syslogNetworks(), in.Network) {
		return // reported where it was read; more would be noise
	}
	if in.Network == SyslogTLS {
		for _, k := range []string{"tls_cert", "tls_key"} {
			if keyLine(k) == 0 {
				r.pr.errorf(in.Line, k, "missing: a syslog input with network = %q needs tls_cert and tls_key", SyslogTLS)
			}
		}
	} else {
		for _, k := range []string{"tls_cert", "tls_key", "tls_client_ca"} {
			if l := keyLine(k); l > 0 {
				r.pr.errorf(l, k, "only a syslog input with network = %q takes this key", SyslogTLS)
			}
		}
	}
	if in.Network == SyslogUDP {
		for _, k := range []string{"message_time_limit", "idle_time_limit"} {
			if l := keyLine(k); l > 0 {
				r.pr.warnf(l, k, "has no effect on UDP, which has no connections")
			}
		}
	}
	switch {
	case in.Spoofable() && !in.AcceptSpoofable:
		r.pr.errorf(at("listen"), "listen", "%s", spoofableMessage(in))
	case in.AcceptSpoofable && !in.Spoofable():
		r.pr.warnf(at("accept_spoofable"), "accept_spoofable", "has no effect: only a UDP listener beyond loopback has spoofable senders")
	}
}

// validateSyslog is Validate for a syslog input.
func (in *Input) validateSyslog() error {
	if in.Listen == "" || in.Path != "" || len(in.Groups) > 0 {
		return errors.New("syslog input needs listen, and takes neither path nor groups")
	}
	if !slices.Contains(syslogNetworks(), in.Network) {
		return fmt.Errorf("syslog network %q (want %s)", in.Network, strings.Join(syslogNetworks(), ", "))
	}
	if !slices.Contains(TextFormats(), in.Format) {
		return fmt.Errorf("unknown text format %q (want %s)", in.Format, strings.Join(TextFormats(), ", "))
	}
	tls := in.TLSCert != "" || in.TLSKey != "" || in.TLSClientCA != ""
	switch {
	case in.Network == SyslogTLS && (in.TLSCert == "" || in.TLSKey == ""):
		return errors.New("a TLS syslog input needs tls_cert and tls_key")
	case in.Network != SyslogTLS && tls:
		return fmt.Errorf("only a syslog input with network = %q takes tls_cert, tls_key and tls_client_ca", SyslogTLS)
	case in.Spoofable() && !in.AcceptSpoofable:
		return errors.New(spoofableMessage(in))
	case in.MessageTimeLimit < 0 || in.MessageTimeLimit > MaxMessageTimeLimit:
		return fmt.Errorf("message_time_limit %v is not in 0..%v", in.MessageTimeLimit, MaxMessageTimeLimit)
	case in.IdleTimeLimit < 0 || in.IdleTimeLimit > MaxIdleTimeLimit:
		return fmt.Errorf("idle_time_limit %v is not in 0..%v", in.IdleTimeLimit, MaxIdleTimeLimit)
	}
	return nil
}

// warnSpoofable warns, for every input that accepts spoofable senders,
// about each door it feeds that a forged knock can open.
func warnSpoofable(inputs []Input, doors []Door, pr *problems) {
	for i := range inputs {
		in := &inputs[i]
		if !in.AcceptSpoofable || !in.Spoofable() {
			continue
		}
		for j := range doors {
			if d := &doors[j]; !forgeProof(d) {
				pr.warnf(in.Line, "accept_spoofable", "door %q takes knocks from %s, whose senders can be spoofed: "+
					"anyone who can reach it can knock the door open for any address", d.Name, in.String())
			}
		}
	}
}

// forgeProof reports whether a knock on d proves who sent it, so that a
// knock forged into a spoofable input cannot open it: only a sealed door
// that binds its blocks to the sender's address does. Every other door is
// open to whoever can forge its knocks (or replay a sniffed unbound
// block).
func forgeProof(d *Door) bool { return d.Sealed != nil && d.Sealed.BindSource }
