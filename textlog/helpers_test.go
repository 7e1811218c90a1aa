package textlog

import (
	"testing"
	"time"
)

// waitErr receives from done, failing the test if nothing arrives in a
// time far beyond what the operation needs. The bound only turns a hang
// into a failure; it does not order anything.
func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("timed out: the operation did not return after cancellation")
		return nil
	}
}
