package config

import (
	"strconv"
	"strings"
)

// The TOML decoder reports where a syntax error is, but not where each key
// of a valid document was defined, and it names every element of an array
// of tables alike ("door.name"). keyLines fills that gap: a small scanner
// that walks an already valid document and records the line of every key,
// table header and array element under a path that tells array elements
// apart. It is lenient by design: on input the decoder accepted it is
// exact, and on anything else it only has to terminate.

// A path is the keys from the document root joined by pathSep, with array
// elements written as idxMark followed by the index, so that "door", 1,
// "name" is distinct from a key literally named "1".
const (
	pathSep = "\x00"
	idxMark = "\x01"
)

func pathOf(parts ...string) string { return strings.Join(parts, pathSep) }

func elem(i int) string { return idxMark + strconv.Itoa(i) }

// keyLines maps a path to the line its key, header or element starts on.
type keyLines map[string]int

// lookup returns the line of the path, or of its nearest recorded parent,
// or 0.
func (kl keyLines) lookup(parts ...string) int {
	for n := len(parts); n > 0; n-- {
		if l, ok := kl[pathOf(parts[:n]...)]; ok {
			return l
		}
	}
	return 0
}

type posScanner struct {
	s    string
	i    int
	line int
	kl   keyLines
	// arrays counts the elements of each array of tables seen so far, so
	// that a later [[door]] or [door.x] resolves to the right element.
	arrays map[string]int
}

// scanKeyLines returns the line of every key in the TOML document s.
func scanKeyLines(s string) keyLines {
	p := &posScanner{s: s, line: 1, kl: make(keyLines), arrays: make(map[string]int)}
	var ctx []string
	for p.i < len(p.s) {
		start := p.i
		p.skipBlank(true)
		if p.eof() {
			break
		}
		line := p.line
		switch {
		case strings.HasPrefix(p.s[p.i:], "[["):
			p.i += 2
			keys := p.keyPath()
			p.skipPast(']')
			p.skipPast(']')
			ctx = p.arrayHeader(keys, line)
		case p.s[p.i] == '[':
			p.i++
			keys := p.keyPath()
			p.skipPast(']')
			ctx = p.resolve(keys, false)
			p.record(ctx, line)
		default:
			keys := p.keyPath()
			if len(keys) == 0 {
				p.skipLine()
				break
			}
			full := append(append([]string(nil), ctx...), keys...)
			p.record(full, line)
			p.skipBlank(false)
			if p.peek() == '=' {
				p.i++
			}
			p.value(full)
		}
		if p.i == start {
			p.advance()
		}
	}
	return p.kl
}

func (p *posScanner) eof() bool { return p.i >= len(p.s) }

func (p *posScanner) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *posScanner) advance() {
	if p.eof() {
		return
	}
	if p.s[p.i] == '\n' {
		p.line++
	}
	p.i++
}

// skipBlank skips spaces and comments, and newlines too when nl is set.
func (p *posScanner) skipBlank(nl bool) {
	for !p.eof() {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			p.i++
		case c == '\n' && nl:
			p.advance()
		case c == '#':
			for !p.eof() && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func (p *posScanner) skipLine() {
	for !p.eof() && p.s[p.i] != '\n' {
		p.i++
	}
	p.advance()
}

// skipPast moves past the next c on the current line.
func (p *posScanner) skipPast(c byte) {
	for !p.eof() && p.s[p.i] != '\n' {
		if p.s[p.i] == c {
			p.i++
			return
		}
		p.i++
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// keyPath reads a dotted key such as a."b".'c'.
func (p *posScanner) keyPath() []string {
	var keys []string
	for {
		p.skipBlank(false)
		var k string
		switch p.peek() {
		case '"':
			k = p.basicString()
		case '\'':
			k = p.literalString()
		default:
			j := p.i
			for j < len(p.s) && isBareKeyByte(p.s[j]) {
				j++
			}
			if j == p.i {
				return keys
			}
			k, p.i = p.s[p.i:j], j
		}
		keys = append(keys, k)
		p.skipBlank(false)
		if p.peek() != '.' {
			return keys
		}
		p.i++
	}
}

// basicString reads a one-line "..." string and returns its value, as far
// as Go's unquoting agrees with TOML's; keys with exotic escapes only lose
// their line number.
func (p *posScanner) basicString() string {
	p.i++
	j := p.i
	for !p.eof() && p.s[p.i] != '"' && p.s[p.i] != '\n' {
		if p.s[p.i] == '\\' {
			p.i++
			if p.eof() || p.s[p.i] == '\n' {
				break
			}
		}
		p.i++
	}
	raw := p.s[j:min(p.i, len(p.s))]
	if p.peek() == '"' {
		p.i++
	}
	if v, err := strconv.Unquote(`"` + raw + `"`); err == nil {
		return v
	}
	return raw
}

func (p *posScanner) literalString() string {
	p.i++
	j := p.i
	for !p.eof() && p.s[p.i] != '\'' && p.s[p.i] != '\n' {
		p.i++
	}
	raw := p.s[j:p.i]
	if p.peek() == '\'' {
		p.i++
	}
	return raw
}

// multiline skips a multi-line string, opened and closed by three quotes of
// either kind, counting its lines.
func (p *posScanner) multiline(delim string) {
	p.i += 3
	for !p.eof() {
		if delim[0] == '"' && p.s[p.i] == '\\' {
			p.i++
			p.advance()
			continue
		}
		if strings.HasPrefix(p.s[p.i:], delim) {
			p.i += 3
			// Up to two quotes right before the closing delimiter belong
			// to the string, so the delimiter may run on.
			for n := 0; n < 2 && p.peek() == delim[0]; n++ {
				p.i++
			}
			return
		}
		p.advance()
	}
}

// value skips one value, recording the lines of array elements and inline
// table keys under path.
func (p *posScanner) value(path []string) {
	p.skipBlank(false)
	switch {
	case p.eof():
	case strings.HasPrefix(p.s[p.i:], `"""`):
		p.multiline(`"""`)
	case strings.HasPrefix(p.s[p.i:], `'''`):
		p.multiline(`'''`)
	case p.s[p.i] == '"':
		p.basicString()
	case p.s[p.i] == '\'':
		p.literalString()
	case p.s[p.i] == '[':
		p.i++
		for n := 0; ; {
			p.skipBlank(true)
			if p.eof() {
				return
			}
			switch p.s[p.i] {
			case ']':
				p.i++
				return
			case ',':
				p.i++
				continue
			}
			el := append(append([]string(nil), path...), elem(n))
			p.record(el, p.line)
			start := p.i
			p.value(el)
			if p.i == start {
				p.advance()
			}
			n++
		}
	case p.s[p.i] == '{':
		p.i++
		for {
			p.skipBlank(true)
			if p.eof() {
				return
			}
			switch p.s[p.i] {
			case '}':
				p.i++
				return
			case ',':
				p.i++
				continue
			}
			line := p.line
			keys := p.keyPath()
			if len(keys) == 0 {
				p.advance()
				continue
			}
			full := append(append([]string(nil), path...), keys...)
			p.record(full, line)
			p.skipBlank(false)
			if p.peek() == '=' {
				p.i++
			}
			p.value(full)
		}
	default:
		for !p.eof() && !strings.ContainsRune(",]}#\n", rune(p.s[p.i])) {
			p.i++
		}
	}
}

// resolve turns a header's keys into a path, stepping into the latest
// element of every array of tables on the way, as TOML does. With
// arrayLast the last key is left unresolved: it names the array itself.
func (p *posScanner) resolve(keys []string, arrayLast bool) []string {
	var cur []string
	for i, k := range keys {
		cur = append(cur, k)
		if arrayLast && i == len(keys)-1 {
			break
		}
		if n, ok := p.arrays[pathOf(cur...)]; ok {
			cur = append(cur, elem(n-1))
		}
	}
	return cur
}

// arrayHeader handles [[keys]] and returns the new element's path.
func (p *posScanner) arrayHeader(keys []string, line int) []string {
	arr := p.resolve(keys, true)
	p.record(arr, line)
	k := pathOf(arr...)
	n := p.arrays[k]
	p.arrays[k] = n + 1
	el := append(arr, elem(n))
	p.kl[pathOf(el...)] = line
	return el
}

// record notes the line of path and of any parent defined implicitly by it,
// keeping the first definition.
func (p *posScanner) record(path []string, line int) {
	for n := 1; n <= len(path); n++ {
		k := pathOf(path[:n]...)
		if _, ok := p.kl[k]; !ok {
			p.kl[k] = line
		}
	}
}
