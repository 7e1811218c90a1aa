package input

import (
	"strings"
	"testing"
)

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonNone; r < NumReasons; r++ {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "reason(") || seen[s] {
			t.Errorf("Reason(%d).String() = %q: missing or duplicate name", r, s)
		}
		seen[s] = true
	}
	if s := Reason(250).String(); s != "reason(250)" {
		t.Errorf("Reason(250).String() = %q", s)
	}
}

func TestStatsCounters(t *testing.T) {
	var st Stats
	st.Skipped[ReasonPrefix] = 2
	st.Skipped[ReasonNotIP] = 3
	st.Counters = []Counter{{Name: "denied", Value: 4}, {Name: "open", Value: 0, Gauge: true}}
	tests := []struct {
		name string
		has  bool
		want uint64
	}{
		{"denied", true, 4},
		{"open", true, 0},
		{"missing", false, 0},
	}
	for _, tt := range tests {
		if got, has := st.Counter(tt.name), st.Has(tt.name); got != tt.want || has != tt.has {
			t.Errorf("Counter(%q), Has = %d, %v; want %d, %v", tt.name, got, has, tt.want, tt.has)
		}
	}
	if n := st.SkippedTotal(); n != 5 {
		t.Errorf("SkippedTotal = %d, want 5", n)
	}
}
