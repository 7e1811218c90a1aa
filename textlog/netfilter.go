package textlog

import "portknock/sequence"

// netfilterImplemented is false until the netfilter parser is written.
const netfilterImplemented = false

// parseNetfilter parses a kernel LOG / nft log line.
func (p *Parser) parseNetfilter(line []byte, ev *sequence.Event) Reason {
	return ReasonUnrecognized
}
