package textlog

import (
	"bufio"
	"os"
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

// readTestLines returns the lines of a test data file.
func readTestLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20) // journal records run to a few KiB
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
