package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// InputSpecForms lists the forms ParseInputSpec accepts, one per line, for
// help texts and messages.
const InputSpecForms = `-                          text lines on stdin
PATH                       a FIFO, or a log file followed from its end (waited for until it exists)
text:[FORMAT:]PATH         a text input with its format pinned, such as text:netfilter:/var/log/kern.log
nflog:GROUP[,GROUP...]     NFLOG groups 0-65535, such as nflog:5,6 (Linux, CAP_NET_ADMIN)`

// ParseInputSpec turns a command-line input into an Input, so that a
// knockd.conf, which has no inputs, runs as
// `portknockd -c /etc/knockd.conf -i nflog:5` the way `knockd -i eth0` did.
// The forms are those of InputSpecForms. A text input without a format has
// its format recognised line by line.
//
// A spec that looks like TYPE:... or text:FORMAT:... with an unknown type
// or format is refused, not read as a relative path with a colon in it (a
// typo such as text:netfliter:/var/log/kern.log would otherwise wait
// forever for a file that never appears); such a path is written ./a:b.
// The result is validated; its Line is 0. Errors do not repeat spec: the
// caller says where it came from.
func ParseInputSpec(spec string) (Input, error) {
	in := Input{Type: InputText, Path: spec, Format: DefaultTextFormat}
	if rest, ok := strings.CutPrefix(spec, InputNFLOG+":"); ok {
		in = Input{Type: InputNFLOG}
		for g := range strings.SplitSeq(rest, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(g), 10, 16)
			if err != nil {
				return Input{}, fmt.Errorf("bad NFLOG group %q (want 0-65535)", g)
			}
			in.Groups = append(in.Groups, uint16(n))
		}
	} else if rest, ok := strings.CutPrefix(spec, InputText+":"); ok {
		in.Path = rest
		if f, path, ok := strings.Cut(rest, ":"); ok {
			switch {
			case slices.Contains(TextFormats(), f):
				in.Format, in.Path = f, path
			case isWord(f):
				return Input{}, fmt.Errorf("unknown format %q (want one of %s)", f, strings.Join(TextFormats(), ", "))
			}
		}
	} else if t, _, ok := strings.Cut(spec, ":"); ok && isWord(t) {
		return Input{}, fmt.Errorf("unknown input type %q (want -, a path, text:[FORMAT:]PATH or nflog:GROUP)", t)
	}
	if err := in.Validate(); err != nil {
		return Input{}, err
	}
	return in, nil
}

// isWord reports whether s could be meant as a name (a format or an input
// type) rather than a piece of a path.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return s != "-"
}

// ParseInputSpecs parses every -i spec, each error prefixed with "-i SPEC:",
// so that the daemon and check refuse the same specs with the same words.
func ParseInputSpecs(specs []string) ([]Input, error) {
	var (
		out  []Input
		errs []error
	)
	for _, spec := range specs {
		in, err := ParseInputSpec(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("-i %s: %w", spec, err))
			continue
		}
		out = append(out, in)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
