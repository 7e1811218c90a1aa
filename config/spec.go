package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseInputSpec turns a command-line input such as "-", "/run/knock.fifo"
// or "nflog:5,6" into an Input, so that a knockd.conf, which has no inputs,
// runs as `portknockd -c /etc/knockd.conf -i nflog:5` the way
// `knockd -i eth0` did. A text input's format is recognised line by line.
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
	}
	if err := in.Validate(); err != nil {
		return Input{}, err
	}
	return in, nil
}
