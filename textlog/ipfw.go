package textlog

import "portknock/sequence"

// ipfwImplemented is false until the ipfw parser is written.
const ipfwImplemented = false

// parseIpfw parses an ipfw kernel log line.
func (p *Parser) parseIpfw(line []byte, ev *sequence.Event) Reason {
	return ReasonUnrecognized
}
