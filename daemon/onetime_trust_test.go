package daemon

import (
	"os"
	"strings"
	"testing"
)

func TestOneTimeRefusesUntrustedFile(t *testing.T) {
	path := writeFile(t, "1000,2000\n3000\n")
	chmod(t, path, 0o666)
	o, err := OpenOneTime(path, nil)
	if o != nil {
		o.Close()
	}
	wantTrustError(t, "OpenOneTime of a 0666 file", err, path)

	// ReadOneTime only looks; check judges separately.
	seqs, err := ReadOneTime(path)
	if err != nil || len(seqs) != 2 {
		t.Errorf("ReadOneTime = %v, %v; want 2 sequences", seqs, err)
	}
	if err := CheckOneTime(path, uint32(os.Geteuid())); err == nil {
		t.Error("CheckOneTime accepts a 0666 file")
	}
}

// TestOneTimeConsumeJudgesAgain: a file that became untrusted after it was
// opened serves nothing more, and is not written.
func TestOneTimeConsumeJudgesAgain(t *testing.T) {
	const content = "1000,2000\n3000\n"
	t.Run("chmod", func(t *testing.T) {
		o, path := openOneTime(t, content, nil)
		chmod(t, path, 0o646)
		wantTrustError(t, "Consume of a file made 0646", o.Consume(), path)
		if data, _ := os.ReadFile(path); string(data) != content {
			t.Errorf("untrusted file was marked: %q", data)
		}
		if cur, ok := o.Current(); !ok || len(cur) != 2 {
			t.Errorf("current sequence moved on after a refused Consume: %v", cur)
		}
	})
	t.Run("replaced", func(t *testing.T) {
		o, path := openOneTime(t, content, nil)
		replaceFile(t, path, content, 0o600)
		chmod(t, path, 0o666)
		wantTrustError(t, "Consume of a file replaced by a 0666 one", o.Consume(), path)
		if data, _ := os.ReadFile(path); string(data) != content {
			t.Errorf("untrusted replacement was marked: %q", data)
		}
	})
	t.Run("replaced by another user's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("changing a file's owner needs root")
		}
		o, path := openOneTime(t, content, nil)
		replaceFile(t, path, content, 0o600)
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		err := o.Consume()
		wantTrustError(t, "Consume of a file replaced by nobody's", err, path)
		if err != nil && !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("error does not name the owner: %v", err)
		}
	})
}
