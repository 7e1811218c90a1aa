package textlog

import (
	"testing"

	"portknock/internal/netnstest"
)

// TestMain runs the package's tests in a network namespace of their own,
// so the syslog tests' packets never touch the host's network.
func TestMain(m *testing.M) { netnstest.MainPrivate(m) }

// slNetns skips a test that sends packets unless the tests run in their
// own network namespace; with PORTKNOCK_INTEGRATION=1 that is a failure
// instead.
func slNetns(t *testing.T) {
	t.Helper()
	netnstest.RequirePrivate(t, "sends packets")
}
