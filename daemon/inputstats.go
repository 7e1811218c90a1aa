package daemon

import (
	"strings"

	"portknock/input"
)

// StatusInput is one input's counters as the status socket reports them.
type StatusInput struct {
	Name string `json:"name"`
	Type string `json:"type"` // "text", "syslog" or "nflog"
	// Events counts what the input handed to the matcher.
	Events uint64 `json:"events"`
	// Skipped counts what was not an event, by reason ("unrecognized",
	// "prefix", ...).
	Skipped map[string]uint64 `json:"skipped"`
	// Counters are the others: what was read ("lines", "packets"), events
	// dropped ("dropped") and the kind's own ("kernel_drops", "denied",
	// ...).
	Counters map[string]uint64 `json:"counters"`
}

// statusInput turns an input's counters into the status socket's shape.
// It and the metrics' inputMetrics are the only readers of input.Stats
// here.
func statusInput(st InputStats) StatusInput {
	out := StatusInput{Name: st.Name, Type: inputType(st.Name), Events: st.Events,
		Skipped: map[string]uint64{}, Counters: map[string]uint64{}}
	for r, n := range st.Skipped {
		if input.Reason(r) != input.ReasonNone && n > 0 {
			out.Skipped[input.Reason(r).String()] = n
		}
	}
	out.Counters[cmpOr(st.Unit, "read")] = st.Read
	out.Counters["dropped"] = st.Dropped
	for _, c := range st.Counters {
		out.Counters[c.Name] = c.Value
	}
	return out
}

// inputType is the kind of input a name (config.Input.String) names.
func inputType(name string) string {
	kind, _, _ := strings.Cut(name, ":")
	return kind
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
