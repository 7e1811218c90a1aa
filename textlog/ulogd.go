package textlog

import "portknock/sequence"

// ulogdImplemented is false until the ulogd parser is written.
const ulogdImplemented = false

// parseUlogd parses ulogd2 LOGEMU text or JSON.
func (p *Parser) parseUlogd(line []byte, ev *sequence.Event) Reason {
	return ReasonUnrecognized
}
