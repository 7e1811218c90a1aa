// Package command describes what a door runs and fills in its placeholders.
// It is a leaf: config parses commands into it, actions runs them, and the
// journal keeps them for closes that outlive the process, without any of
// them importing another for the type.
package command

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Command is something a door runs. Exactly one of Shell and Argv is set,
// or neither for "do nothing".
type Command struct {
	// Shell is run by /bin/sh -c, as knockd does.
	Shell string
	// Argv is executed directly, without a shell, for users who want no
	// quoting surprises.
	Argv []string
}

// IsZero reports whether the command does nothing.
func (c Command) IsZero() bool { return c.Shell == "" && len(c.Argv) == 0 }

// String formats the command for logs: the shell line as written, or the
// argv with each argument quoted where it needs to be.
func (c Command) String() string {
	if len(c.Argv) == 0 {
		return c.Shell
	}
	parts := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>(){}*?[]#~") {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

// Clone returns a copy that shares no argv with c, so that a copy made for
// IPv6 cannot change with the IPv4 command it came from.
func (c Command) Clone() Command {
	return Command{Shell: c.Shell, Argv: slices.Clone(c.Argv)}
}

// Validate refuses a command that could not be run as meant: one that sets
// both forms (the config loader refuses those, so running neither is safer
// than guessing), or an argv without a program.
func (c Command) Validate() error {
	if c.Shell != "" && len(c.Argv) > 0 {
		return errors.New("command sets both a shell line and an argv")
	}
	if len(c.Argv) > 0 && c.Argv[0] == "" {
		return errors.New("command argv has an empty program name")
	}
	return nil
}

// Vars are the values of one knock that a command may name.
type Vars struct {
	// IP is the knocking source, for %IP%.
	IP netip.Addr
	// Door is the door's name, for %DOOR%.
	Door string
	// Port and Proto are the last knock's, for %PORT% and %PROTO%; a
	// zero Port prints nothing, and Proto must be "tcp", "udp" or empty.
	Port  uint16
	Proto string
}

// Substitute replaces the placeholders in c: %IP% with the source address,
// %DOOR% with the door name, %PORT% and %PROTO% with the last knock's port
// and protocol.
//
// The address is printed from a netip.Addr unmapped and with its zone
// removed, the port as a number, and a protocol other than "tcp" or "udp"
// as nothing, so none of them can carry shell syntax into a Shell command.
// The door name comes from the administrator's configuration and is
// inserted as written. Argv elements are substituted one by one and never
// re-split, so a value stays one argument. c is not changed.
func Substitute(c Command, v Vars) Command {
	if c.IsZero() {
		return Command{}
	}
	vals := valuesOf(v)
	if c.Shell != "" {
		return Command{Shell: vals.expand(c.Shell)}
	}
	argv := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		argv[i] = vals.expand(a)
	}
	return Command{Argv: argv}
}

// values are the placeholders' replacements, in the order of placeholders.
type values [4]string

// placeholders are the names Substitute replaces. None is a prefix of
// another, so the first that matches at a '%' is the only one.
var placeholders = [4]string{"%IP%", "%DOOR%", "%PORT%", "%PROTO%"}

func valuesOf(v Vars) *values {
	var vals values
	if src := v.IP.Unmap().WithZone(""); src.IsValid() {
		vals[0] = src.String()
	}
	vals[1] = v.Door
	if v.Port != 0 {
		vals[2] = strconv.Itoa(int(v.Port))
	}
	if v.Proto == "tcp" || v.Proto == "udp" {
		vals[3] = v.Proto
	}
	return &vals
}

// expand replaces every placeholder in s, left to right, never looking
// again at what it inserted.
func (vals *values) expand(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		k := slices.IndexFunc(placeholders[:], func(p string) bool { return strings.HasPrefix(s, p) })
		if k < 0 {
			b.WriteByte('%')
			s = s[1:]
		} else {
			b.WriteString(vals[k])
			s = s[len(placeholders[k]):]
		}
		i = strings.IndexByte(s, '%')
	}
	b.WriteString(s)
	return b.String()
}
