package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ParseInputSpec turns a command-line input into an Input, so that a
// knockd.conf, which has no inputs, runs as
// `portknockd -c /etc/knockd.conf -i nflog:5` the way `knockd -i eth0` did.
// The forms are:
//
//	nflog:GROUP[,GROUP...]     NFLOG groups, such as nflog:5,6
//	text:[FORMAT:]PATH         a text input, such as text:netfilter:/var/log/kern.log
//	PATH                       a text input: "-" for stdin, a FIFO or a file
//
// A text input without a format has its format recognised line by line.
// The result is validated; its Line is 0.
func ParseInputSpec(spec string) (Input, error) {
	in := Input{Type: InputText, Path: spec, Format: DefaultTextFormat}
	if rest, ok := strings.CutPrefix(spec, InputNFLOG+":"); ok {
		in = Input{Type: InputNFLOG}
		for g := range strings.SplitSeq(rest, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(g), 10, 16)
			if err != nil {
				return Input{}, fmt.Errorf("input %q: bad NFLOG group %q (want 0-65535)", spec, g)
			}
			in.Groups = append(in.Groups, uint16(n))
		}
	} else if rest, ok := strings.CutPrefix(spec, InputText+":"); ok {
		in.Path = rest
		if f, path, ok := strings.Cut(rest, ":"); ok && slices.Contains(TextFormats(), f) {
			in.Format, in.Path = f, path
		}
	}
	if err := in.Validate(); err != nil {
		return Input{}, fmt.Errorf("input %q: %w", spec, err)
	}
	return in, nil
}
