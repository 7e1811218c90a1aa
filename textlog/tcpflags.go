package textlog

import "portknock/sequence"

// The TCP flags as the text formats write them: the kernel and ulogd as
// words ("SYN"), filterlog and tcpdump as one letter each ("SA", "S.").
// One table holds both, so every format reads a flag the same way.
var tcpFlagNames = [...]struct {
	letter byte
	word   string
	flag   sequence.TCPFlags
}{
	{'F', "FIN", sequence.FIN},
	{'S', "SYN", sequence.SYN},
	{'R', "RST", sequence.RST},
	{'P', "PSH", sequence.PSH},
	{'A', "ACK", sequence.ACK},
	{'U', "URG", sequence.URG},
	{'E', "ECE", sequence.ECE},
	{'W', "CWR", sequence.CWR},
}

// tcpFlagWord returns the flag a word of the kernel's or ulogd's line names,
// or 0. They print the words in upper case; "AE" (accurate ECN) has no place
// in TCPFlags. The words are tcpFlagNames' (a test holds them equal),
// written out as a switch because this runs for every word after the ports.
func tcpFlagWord(t []byte) sequence.TCPFlags {
	if len(t) != 3 {
		return 0
	}
	switch string(t) {
	case "FIN":
		return sequence.FIN
	case "SYN":
		return sequence.SYN
	case "RST":
		return sequence.RST
	case "PSH":
		return sequence.PSH
	case "ACK":
		return sequence.ACK
	case "URG":
		return sequence.URG
	case "ECE":
		return sequence.ECE
	case "CWR":
		return sequence.CWR
	}
	return 0
}

// tcpFlagLetters reads flags written one letter each, in any order. With
// dotACK (upstream tcpdump's "Flags [S.]") '.' is ACK and 'e', accurate
// ECN's AE bit, which events do not carry, is accepted and dropped. ok is
// false for any other byte.
func tcpFlagLetters(b []byte, dotACK bool) (f sequence.TCPFlags, ok bool) {
next:
	for _, c := range b {
		for _, n := range tcpFlagNames {
			if c == n.letter {
				f |= n.flag
				continue next
			}
		}
		switch {
		case dotACK && c == '.':
			f |= sequence.ACK
		case dotACK && c == 'e':
		default:
			return 0, false
		}
	}
	return f, true
}
