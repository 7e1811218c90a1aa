// Package textlog turns firewall log lines into knock events.
//
// Firewalls that cannot deliver packets over netlink can still log them as
// text; this package reads such lines from stdin, a FIFO or a file and hands
// every logged knock packet to the caller as a sequence.Event.
//
// Parsing (Parser) is pure and separate from reading (ReadLines, Source):
// a line in, an event or a Reason out, with no allocation per line, so that
// a log flood costs CPU but not garbage. A line that is not understood is
// counted and skipped; it is never fatal.
package textlog
