package config

import (
	"bytes"
	"strings"
)

// DetectFormat tells a knockd.conf from a native TOML file by its content,
// before either parser runs, so that errors are reported in the terms of
// the format the user actually wrote.
//
// Lines are looked at in order, skipping blank lines and lines starting
// with '#'. The first decisive line wins:
//
//   - "[[...]]" (an array of tables) means TOML; knockd has no such thing.
//   - "[options]" (any case) means knockd; TOML configurations have no
//     options table.
//   - A header followed by a '#' comment means TOML; knockd allows none.
//   - A line without '=' that is not a header, such as "UseSyslog", means
//     knockd: TOML has no bare words.
//   - "key = value": a value starting with a quote, '[' or '{' means TOML
//     (knockd values are never quoted); an empty value, or one that is not
//     a TOML number, boolean or date, such as "7000,8000:udp",
//     "syn,!ack" or "/sbin/iptables ...", means knockd.
//
// Other lines ("[name]" headers, "seq_timeout = 5") fit both formats. If no
// line decides, a header other than [daemon], [input] or [door] means
// knockd, a file name ending in ".conf" means knockd, and anything else is
// TOML.
func DetectFormat(path string, data []byte) string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	otherHeader := false
	for len(data) > 0 {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte("\n"))
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "[[") {
			return FormatTOML
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				if before, _, ok := strings.Cut(line, "#"); ok && strings.HasSuffix(strings.TrimSpace(before), "]") {
					return FormatTOML
				}
				continue // malformed either way; let a later line decide
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if strings.EqualFold(name, "options") {
				return FormatKnockd
			}
			switch name {
			case "daemon", "input", "door":
			default:
				otherHeader = true
			}
			continue
		}
		_, value, ok := strings.Cut(line, "=")
		if !ok {
			return FormatKnockd
		}
		if f := valueFormat(strings.TrimSpace(value)); f != "" {
			return f
		}
	}
	if otherHeader || strings.HasSuffix(path, ".conf") {
		return FormatKnockd
	}
	return FormatTOML
}

// tomlScalar reports whether v can be a bare TOML value: a number (with
// sign, underscores, base prefix or exponent), inf, nan, a boolean, or a
// date and time. It is deliberately loose; it only has to reject what
// knockd values look like.
func tomlScalar(v string) bool {
	switch v {
	case "true", "false", "inf", "+inf", "-inf", "nan", "+nan", "-nan":
		return true
	}
	v = strings.TrimLeft(v, "+-")
	if v == "" || v[0] < '0' || v[0] > '9' {
		return false
	}
	// A date and time may be separated by one space: 1979-05-27 07:32:00Z.
	date, clock, spaced := strings.Cut(v, " ")
	if spaced && (clock == "" || clock[0] < '0' || clock[0] > '9') {
		return false
	}
	ok := func(s string) bool {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !isBareKeyByte(c) && c != '.' && c != ':' && c != '+' {
				return false
			}
		}
		return true
	}
	return ok(date) && ok(clock)
}

// valueFormat returns the format a "key = value" line's value implies, or
// "" when it fits both.
func valueFormat(v string) string {
	if v == "" {
		return FormatKnockd
	}
	switch v[0] {
	case '"', '\'', '[', '{':
		return FormatTOML
	}
	if i := strings.Index(v, "#"); i > 0 {
		v = strings.TrimSpace(v[:i])
	}
	if tomlScalar(v) {
		return ""
	}
	return FormatKnockd
}
