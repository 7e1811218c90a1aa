package replay

import (
	"testing"

	"portknock/internal/netnstest"
)

// TestMain runs the package's tests in namespaces of their own, so that the
// tmpfs the fault tests mount, fill and make read-only is never seen by
// the host, even when a test is killed half-way.
func TestMain(m *testing.M) { netnstest.MainPrivate(m) }
