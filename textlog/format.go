package textlog

import (
	"fmt"
	"strconv"

	"portknock/input"
)

// Format names a text log dialect. Inputs either pin one format or use
// FormatAuto, which tries every implemented format on each line, because a
// single log stream (syslog, a journal) often mixes dialects.
type Format uint8

// The formats. New formats are appended, so the values are not stable
// across versions and must not be stored; use the names.
const (
	// FormatAuto recognises each line by its shape. As a result of Parse it
	// means that no format recognised the line.
	FormatAuto Format = iota
	// FormatSimple is Kroon's ulogport protocol: "dport srcip" or
	// "dport/proto srcip", one logged packet per line.
	FormatSimple
	// FormatNetfilter is the Linux LOG target's and nft log's kernel line
	// ("IN=eth0 OUT= ... SRC=... DST=... PROTO=TCP SPT=... DPT=..."), bare
	// or wrapped in syslog, dmesg, /dev/kmsg or journalctl -k framing.
	FormatNetfilter
	// FormatUlogd is ulogd2's LOGEMU text and JSON output.
	FormatUlogd
	// FormatJournal is journalctl -o json: one JSON object per line.
	FormatJournal
	// FormatPflog is tcpdump -n -e -l -i pflog0 output (OpenBSD and
	// upstream tcpdump dialects).
	FormatPflog
	// FormatIpfw is FreeBSD ipfw's kernel log line.
	FormatIpfw
	// FormatFilterlog is pfSense/OPNsense filterlog CSV.
	FormatFilterlog

	formatCount
)

// formatNames are the configuration names, indexed by Format.
var formatNames = [formatCount]string{
	FormatAuto:      "auto",
	FormatSimple:    "simple",
	FormatNetfilter: "netfilter",
	FormatUlogd:     "ulogd",
	FormatJournal:   "journal",
	FormatPflog:     "pflog",
	FormatIpfw:      "ipfw",
	FormatFilterlog: "filterlog",
}

// implemented tells which formats this version parses; a configuration
// naming one that is not gets a clear error instead of silence.
var implemented = [formatCount]bool{
	FormatAuto:      true,
	FormatSimple:    true,
	FormatNetfilter: netfilterImplemented,
	FormatUlogd:     ulogdImplemented,
	FormatJournal:   journalImplemented,
	FormatPflog:     pflogImplemented,
	FormatIpfw:      ipfwImplemented,
	FormatFilterlog: filterlogImplemented,
}

// autoOrder is the order FormatAuto tries formats in: each parser rejects
// a line without its own markers in a few nanoseconds, and the cheapest,
// strictest shapes come first.
var autoOrder = [...]Format{FormatSimple, FormatJournal, FormatUlogd, FormatFilterlog, FormatIpfw, FormatPflog, FormatNetfilter}

// defaultPrograms are the programs each format's firewall logs as: the
// syslog tag (RFC 5424 APP-NAME) its records come under. netfilter and ipfw
// records are kernel messages; ulogd logs through syslog as "ulogd";
// pfSense and OPNsense log as "filterlog"; tcpdump output reaches syslog
// through logger, as "pf" in OpenBSD's FAQ, or as "pflog" or "tcpdump".
// The simple format has none, and the journal format judges _TRANSPORT.
var defaultPrograms = [formatCount][]string{
	FormatNetfilter: {"kernel"},
	FormatUlogd:     {"ulogd"},
	FormatPflog:     {"pf", "pflog", "tcpdump"},
	FormatIpfw:      {"kernel"},
	FormatFilterlog: {"filterlog"},
}

// needsProgram marks the formats whose records count only under a program:
// a filterlog CSV line has nothing else to tell it from other CSV, and a
// simple line nothing to tell it from any two words.
var needsProgram = [formatCount]bool{
	FormatSimple:    true,
	FormatFilterlog: true,
}

// DefaultPrograms returns the programs whose messages may carry f's records
// when Parser.Programs is empty.
func DefaultPrograms(f Format) []string {
	if f >= formatCount {
		return nil
	}
	return append([]string(nil), defaultPrograms[f]...)
}

// ParseFormat returns the format with the given configuration name. Names
// are exact (lower case) because they come from a strict config file.
func ParseFormat(s string) (Format, error) {
	for f, name := range formatNames {
		if name != s {
			continue
		}
		if !implemented[f] {
			return 0, fmt.Errorf("format %q is not implemented yet", s)
		}
		return Format(f), nil
	}
	return 0, fmt.Errorf("unknown format %q (want auto, simple, netfilter, ulogd, journal, pflog, ipfw or filterlog)", s)
}

// String returns the configuration name of the format.
func (f Format) String() string {
	if f < formatCount {
		return formatNames[f]
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// valid reports whether f is a format this version can parse.
func (f Format) valid() bool { return f < formatCount && implemented[f] }

// Reason says why a line is not an event: the reasons of every input, so
// that text, syslog and NFLOG inputs are counted and reported alike.
type Reason = input.Reason

// Reasons for skipping a line, named here as the parsers return them (see
// package input).
const (
	ReasonNone         = input.ReasonNone
	ReasonUnrecognized = input.ReasonUnrecognized
	ReasonBadAddress   = input.ReasonBadAddress
	ReasonBadPort      = input.ReasonBadPort
	ReasonBadProto     = input.ReasonBadProto
	ReasonPrefix       = input.ReasonPrefix
	ReasonTooLong      = input.ReasonTooLong
	ReasonOutbound     = input.ReasonOutbound
	ReasonFragment     = input.ReasonFragment
	ReasonNoPorts      = input.ReasonNoPorts
	ReasonTruncated    = input.ReasonTruncated
	ReasonProgram      = input.ReasonProgram

	reasonCount = input.NumReasons
)
