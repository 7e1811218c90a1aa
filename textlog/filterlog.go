package textlog

import "portknock/sequence"

// filterlogImplemented is false until the filterlog parser is written.
const filterlogImplemented = false

// parseFilterlog parses a pfSense/OPNsense filterlog line.
func (p *Parser) parseFilterlog(line []byte, ev *sequence.Event) Reason {
	return ReasonUnrecognized
}
