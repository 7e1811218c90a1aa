package textlog

import "portknock/sequence"

// pflogImplemented is false until the pflog parser is written.
const pflogImplemented = false

// parsePflog parses tcpdump output for pflog0.
func (p *Parser) parsePflog(line []byte, ev *sequence.Event) Reason {
	return ReasonUnrecognized
}
