package textlog

import "portknock/sequence"

// journalImplemented is false until the journal parser is written.
const journalImplemented = false

// parseJournal parses one journalctl -o json object.
func (p *Parser) parseJournal(line []byte, ev *sequence.Event) Reason {
	return ReasonUnrecognized
}
