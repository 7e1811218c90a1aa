//go:build nometrics

package daemon

import (
	"strings"
	"testing"
)

// TestNoMetricsBuild: a build without metrics refuses the key at start
// rather than run without what the administrator asked for.
func TestNoMetricsBuild(t *testing.T) {
	cfg := doorConfig(t, mkfifo(t, "input"), mkfifo(t, "signal"), "")
	cfg.Daemon.Metrics = "127.0.0.1:0"
	d, err := New(cfg, Options{})
	if err == nil {
		d.abort()
		t.Fatal("New succeeded with metrics in a build without them")
	}
	if !strings.Contains(err.Error(), "nometrics") {
		t.Errorf("error %q does not say why", err)
	}
}
