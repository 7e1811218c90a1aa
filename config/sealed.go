package config

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"portknock/internal/filetrust"
	"portknock/internal/keyfile"
	"portknock/sealed"
	"portknock/sequence"
)

// Defaults and bounds of a sealed door's settings.
const (
	DefaultMaxSkew = 60 * time.Second
	// MinMaxSkew is the smallest max_skew: the block carries whole
	// seconds.
	MinMaxSkew = time.Second
	// MaxMaxSkew is the largest max_skew. A longer one weakens the time
	// check (docs/sealed.md) and keeps a sniffed unbound block good for
	// longer; the replay cache keeps every block this long past its time.
	MaxMaxSkew = sequence.MaxSealedSkew
)

func tomlSealedKeys() []string {
	return []string{"base", "key_file", "proto", "id", "max_skew", "bind_source"}
}

// Sealed makes a door a sealed door: it opens for one AES block, made with
// its key, sent as sixteen knocks in its port range (docs/sealed.md).
type Sealed struct {
	// Base is the first port of the door's range, Base … Base+4095.
	Base  uint16
	Proto sequence.Proto
	// ID tells doors that share a base apart; 0–255.
	ID byte
	// KeyFile is the path of the key file, and Key the key read from it
	// by Load (Parse reads no files and leaves it zero).
	KeyFile string
	Key     sealed.Key
	// MaxSkew bounds the difference between the block's time and the
	// daemon's clock.
	MaxSkew time.Duration
	// BindSource refuses blocks not bound to the sender's address.
	BindSource bool
	// Line is where key_file is set, for messages about the key.
	Line int
}

// Range returns the door's ports as "40000-44095/tcp".
func (s *Sealed) Range() string {
	return fmt.Sprintf("%d-%d/%s", s.Base, int(s.Base)+sealed.Span-1, s.Proto)
}

// contains reports whether st lies in the range.
func (s *Sealed) contains(st sequence.Step) bool {
	return st.Proto == s.Proto && int(st.Port) >= int(s.Base) && int(st.Port) < int(s.Base)+sealed.Span
}

// SealedRange is the port range of the sealed doors sharing a base.
type SealedRange struct {
	Base  uint16
	Proto sequence.Proto
	// Doors are the names of the doors on the range, in file order.
	Doors []string
}

// String returns the range as "40000-44095/tcp".
func (r SealedRange) String() string {
	return fmt.Sprintf("%d-%d/%s", r.Base, int(r.Base)+sealed.Span-1, r.Proto)
}

// SealedRanges returns the sealed doors' port ranges, by base: part of the
// knock space, which the firewall must log.
func (c *Config) SealedRanges() []SealedRange {
	var out []SealedRange
	for i := range c.Doors {
		s := c.Doors[i].Sealed
		if s == nil {
			continue
		}
		j := slices.IndexFunc(out, func(r SealedRange) bool { return r.Base == s.Base })
		if j < 0 {
			out = append(out, SealedRange{Base: s.Base, Proto: s.Proto})
			j = len(out) - 1
		}
		out[j].Doors = append(out[j].Doors, c.Doors[i].Name)
	}
	slices.SortFunc(out, func(a, b SealedRange) int { return cmp.Or(cmp.Compare(a.Base, b.Base), cmp.Compare(a.Proto, b.Proto)) })
	return out
}

// sealed reads a door's sealed table, recording the line of each of its
// keys in d as "sealed.base" and so on.
func (r *tomlReader) sealed(d *doorDraft, v any, line int, key string, path []string) *Sealed {
	tbl, ok := v.(map[string]any)
	if !ok {
		r.pr.errorf(line, key, `want a table such as { base = 40000, key_file = "door.key" }, got %s`, typeName(v))
		return nil
	}
	s := &Sealed{Proto: sequence.TCP, MaxSkew: DefaultMaxSkew, BindSource: true, Line: line}
	sub := append(slices.Clip(path), key)
	for _, k := range r.keysInOrder(tbl, sub...) {
		v := tbl[k]
		kline := r.lines.lookup(append(slices.Clip(sub), k)...)
		name := key + "." + k
		d.keyLines[name] = kline
		bad := func(format string, args ...any) { r.pr.errorf(kline, name, format, args...) }
		switch k {
		case "base":
			n, ok := v.(int64)
			switch {
			case !ok:
				bad("want an integer, got %s", typeName(v))
			case n < 1 || n > sealed.MaxBase:
				bad("%d out of range: the door owns base..base+%d, so base must be 1-%d", n, sealed.Span-1, sealed.MaxBase)
			default:
				s.Base = uint16(n)
			}
		case "key_file":
			if str, ok := r.str(v, kline, name); ok {
				if str == "" {
					bad("must not be empty")
				}
				s.KeyFile, s.Line = str, kline
			}
		case "proto":
			if str, ok := r.str(v, kline, name); ok {
				p, err := sequence.ParseProto(str)
				if err != nil {
					bad("%v", err)
				} else {
					s.Proto = p
				}
			}
		case "id":
			n, ok := v.(int64)
			switch {
			case !ok:
				bad("want an integer, got %s", typeName(v))
			case n < 0 || n > 255:
				bad("%d out of range 0-255", n)
			default:
				s.ID = byte(n)
			}
		case "max_skew":
			if t, ok := r.duration(v, kline, name); ok {
				if t < MinMaxSkew || t > MaxMaxSkew {
					bad("%v out of range %v-%v", t, MinMaxSkew, MaxMaxSkew)
				} else {
					s.MaxSkew = t
				}
			}
		case "bind_source":
			b, ok := v.(bool)
			if !ok {
				bad("want true or false, got %s", typeName(v))
			} else {
				s.BindSource = b
			}
		default:
			r.pr.errorf(kline, name, "unknown key in a sealed table%s", suggest(k, tomlSealedKeys()))
		}
	}
	if _, ok := tbl["base"]; !ok {
		r.pr.errorf(line, key, "missing base: the first of the door's 4096 ports, such as 40000")
	}
	if _, ok := tbl["key_file"]; !ok {
		r.pr.errorf(line, key, "missing key_file: the door's key, made by portknock keygen FILE")
	}
	return s
}

// checkSealed applies the rules that involve a sealed door and the others:
// doors sharing a base share their key and matching rules and differ by id,
// and a sealed range overlaps no other door's ports. It warns about doors
// that accept unbound blocks.
func checkSealed(drafts []*doorDraft, pr *problems) {
	type owner struct {
		d    *doorDraft
		line int
	}
	var bases []owner // the first door on each base
	for _, d := range drafts {
		s := d.Sealed
		if s == nil || s.Base == 0 {
			continue
		}
		line := d.keyLines["sealed"]
		i := slices.IndexFunc(bases, func(o owner) bool { return o.d.Sealed.Base == s.Base })
		if i >= 0 {
			first := bases[i]
			f := first.d.Sealed
			var differ []string
			if filepath.Clean(f.KeyFile) != filepath.Clean(s.KeyFile) {
				differ = append(differ, "key_file")
			}
			if f.Proto != s.Proto {
				differ = append(differ, "proto")
			}
			if first.d.SeqTimeout != d.SeqTimeout {
				differ = append(differ, "seq_timeout")
			}
			if first.d.TCPFlags != d.TCPFlags {
				differ = append(differ, "tcpflags")
			}
			if first.d.Target != d.Target {
				differ = append(differ, "target")
			}
			if len(differ) > 0 {
				pr.errorf(line, "sealed", "door %q shares base %d with door %q (line %d) but not its %s; doors on one base share key_file, proto, seq_timeout, tcpflags and target",
					d.Name, s.Base, first.d.Name, first.line, strings.Join(differ, ", "))
			}
			for _, o := range drafts {
				if o == d {
					break
				}
				if other := o.Sealed; other != nil && other.Base == s.Base && other.ID == s.ID {
					pr.errorf(cmp.Or(d.keyLines["sealed.id"], line), "sealed.id", "door %q has id %d on base %d, as door %q (line %d) has; doors sharing a base need different ids",
						d.Name, s.ID, s.Base, o.Name, o.keyLines["sealed"])
					break
				}
			}
			continue
		}
		for _, o := range bases {
			if other := o.d.Sealed; other.Proto == s.Proto && int(other.Base) < int(s.Base)+sealed.Span && int(s.Base) < int(other.Base)+sealed.Span {
				pr.errorf(line, "sealed", "range %s overlaps door %q's sealed range %s (line %d); sealed ranges may not overlap",
					s.Range(), o.d.Name, other.Range(), o.line)
			}
		}
		for _, o := range drafts {
			for _, st := range o.Sequence {
				if s.contains(st) {
					pr.errorf(line, "sealed", "range %s holds knock %v of door %q (line %d); a sealed range's ports are its own",
						s.Range(), st, o.Name, o.keyLines["sequence"])
					break
				}
			}
		}
		bases = append(bases, owner{d, line})
	}
	for _, d := range drafts {
		if s := d.Sealed; s != nil && !s.BindSource {
			pr.warnf(d.keyLines["sealed.bind_source"], "sealed.bind_source", "door %q accepts blocks bound to no address: a set of its knocks seen on the wire or in a log opens it "+
				"for whoever sends it first, from anywhere, within max_skew (%v); use only for clients that cannot know their public address", d.Name, s.MaxSkew)
		}
	}
}

// CheckKeys judges, for a daemon running as uid, the key file of every
// sealed door as a secret (see package filetrust): owned by root or uid,
// neither readable nor writable by group or others, nor any directory on
// the way to it writable by them. Each problem is reported at the line of
// its key_file; a missing file is left to the reading to report.
func CheckKeys(c *Config, uid uint32) error {
	pr := &problems{path: c.Path}
	seen := make(map[string]bool)
	for i := range c.Doors {
		s := c.Doors[i].Sealed
		if s == nil || seen[s.KeyFile] {
			continue
		}
		seen[s.KeyFile] = true
		err := filetrust.CheckExisting(s.KeyFile, filetrust.Secret, uid)
		for _, e := range filetrust.Split(err) {
			pr.errorf(s.Line, "sealed.key_file", "door %q: %v", c.Doors[i].Name, e)
		}
	}
	return pr.err()
}

// readKeys reads every sealed door's key, each file once, reporting
// problems at the line of its key_file.
func readKeys(c *Config) error {
	pr := &problems{path: c.Path}
	type result struct {
		key sealed.Key
		err error
	}
	read := make(map[string]result)
	for i := range c.Doors {
		s := c.Doors[i].Sealed
		if s == nil {
			continue
		}
		r, seen := read[s.KeyFile]
		if !seen {
			r.key, r.err = keyfile.Read(s.KeyFile)
			read[s.KeyFile] = r
			if r.err != nil {
				pr.errorf(s.Line, "sealed.key_file", "door %q: %v", c.Doors[i].Name, r.err)
			}
		}
		s.Key = r.key
	}
	return pr.err()
}
