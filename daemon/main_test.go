package daemon

import (
	"testing"

	"portknock/internal/netnstest"
)

// TestMain runs the package's tests in namespaces of their own, so that the
// sockets the daemon's inputs bind are never the host's.
func TestMain(m *testing.M) { netnstest.MainPrivate(m) }
