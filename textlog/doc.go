// Package textlog turns firewall log lines into knock events.
//
// Firewalls that cannot deliver packets over netlink can still log them as
// text; this package reads such lines from stdin, a FIFO, a file or a
// syslog listener and hands every logged knock packet to the caller as a
// sequence.Event.
//
// Parsing (Parser) is pure and separate from reading (ReadLines, Source,
// SyslogListener): a line in, an event or a Reason out, with no allocation
// per line, so that a log flood costs CPU but not garbage. A line that is
// not understood is counted and skipped; it is never fatal.
//
// Parsing has two layers. One framing reader (frame.go) reads whatever
// wraps a record — syslog headers, dmesg and kmsg stamps, tcpdump's clock,
// journal entries — into time, host, program and message; the formats then
// judge the message alone. A record counts only where it begins the
// message of the program its firewall logs as (Parser.Programs), so that a
// record quoted in another program's message (sshd's "Invalid user ...", a
// web request, logger -t myapp) is never a knock. The kernel's packet-log
// fields (kernel.go) and TCP flags (tcpflags.go) are read by one reader
// each, whichever format carried them.
package textlog
