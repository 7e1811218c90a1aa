package buildinfo

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	tests := []struct {
		stamp string
		want  string // prefix
	}{
		{"", "portknockd "},
		{"1.2.3~git20261203.abcdef", "portknockd 1.2.3~git20261203.abcdef"},
	}
	for _, tt := range tests {
		got := version("portknockd", tt.stamp)
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("version(%q) = %q, want it to start with %q", tt.stamp, got, tt.want)
		}
		if tt.stamp == "" && strings.TrimPrefix(got, tt.want) == "" {
			t.Errorf("version(\"\") = %q: no version after the name", got)
		}
	}
	if got := Version("portknock"); !strings.HasPrefix(got, "portknock ") {
		t.Errorf("Version = %q", got)
	}
}
