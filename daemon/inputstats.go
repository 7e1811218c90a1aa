package daemon

import (
	"portknock/nflog"
	"portknock/textlog"
)

// InputStats is what every input reports, whatever its kind, for the
// metrics and the status socket.
type InputStats struct {
	Name string `json:"name"`
	Type string `json:"type"` // "text", "syslog" or "nflog"
	// Events counts what the input handed to the matcher.
	Events uint64 `json:"events"`
	// Skipped counts what was not an event, by reason ("unrecognized",
	// "prefix", ...): the input's own reasons, which differ by kind.
	Skipped map[string]uint64 `json:"skipped"`
	// Counters are the kind's other counters ("lines", "packets",
	// "kernel_drops", "queue_overflow", "denied", ...).
	Counters map[string]uint64 `json:"counters"`
}

// inputStats reads a running input's counters. It is the one place that
// knows each kind's Stats, so that a change to their shape is met here
// alone.
func inputStats(src source) InputStats {
	st := InputStats{Name: src.name(), Skipped: map[string]uint64{}, Counters: map[string]uint64{}}
	switch s := src.(type) {
	case textSource:
		ts := s.Stats()
		st.Type, st.Events = "text", ts.Events
		st.Counters["lines"] = ts.Lines
		textSkipped(st.Skipped, ts.Skipped[:])
	case syslogSource:
		ss := s.Stats()
		st.Type, st.Events = "syslog", ss.Events
		textSkipped(st.Skipped, ss.Skipped[:])
		for k, v := range map[string]uint64{
			"lines": ss.Lines, "messages": ss.Messages, "denied": ss.Denied, "oversize": ss.Oversize,
			"malformed": ss.Malformed, "refused": ss.Refused, "refused_sender": ss.RefusedSender,
			"slow": ss.Slow, "handshake_failed": ss.Handshake, "idle": ss.Idle,
		} {
			st.Counters[k] = v
		}
	case nflogSource:
		ns := s.Stats()
		st.Type, st.Events = "nflog", ns.Events
		for r, n := range ns.Skipped {
			if r != int(nflog.ReasonNone) {
				st.Skipped[nflog.Reason(r).String()] = n
			}
		}
		for k, v := range map[string]uint64{
			"packets": ns.Packets, "queue_overflow": ns.Overflow, "kernel_drops": ns.KernelDrops,
			"overruns": ns.Overruns, "batch_switches": ns.BatchSwitches,
		} {
			st.Counters[k] = v
		}
	}
	return st
}

func textSkipped(into map[string]uint64, skipped []uint64) {
	for r, n := range skipped {
		if r != int(textlog.ReasonNone) {
			into[textlog.Reason(r).String()] = n
		}
	}
}
