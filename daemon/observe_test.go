package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStatus asks a running daemon over its socket: the open door with
// its time left, an attempt in progress, the input's counters; then, once
// it has stopped, that none runs.
func TestStatus(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	cfg := doorConfig(t, in, sig, "")
	dir := cfg.Daemon.StateDir
	ctx := t.Context()
	if _, err := QueryStatus(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before the start: %v, want ErrNotRunning", err)
	}
	d := start(t, cfg, Options{Status: true})
	sock := filepath.Join(dir, StatusSocket)
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("status socket %s, want a socket 0600", fi.Mode())
	}
	if _, err := listenStatus(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second socket on the same state_dir: %v, want in use", err)
	}

	writeLines(t, in, "7000 192.0.2.10", "8000/tcp 192.0.2.10", "9000/udp 192.0.2.10", "7000 192.0.2.11", "junk")
	expect(t, ch, "open ssh 192.0.2.10")
	// The attempt from .11 shows once the loop has taken its knock and a
	// snapshot older than that has aged out; the open door once its
	// command has exited.
	var st *Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err = QueryStatus(ctx, dir); err != nil {
			t.Fatal(err)
		}
		// A snapshot may be up to snapshotMaxAge old: one taken while the
		// knocks from .10 were arriving shows them in progress.
		done := st.AttemptsTotal == 1 && len(st.Attempts) == 1 && st.Attempts[0].Src == "192.0.2.11" && st.OpenDoorsTotal == 1
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(snapshotMaxAge / 5)
	}
	if st.OpenDoorsTotal != 1 || len(st.OpenDoors) != 1 {
		t.Fatalf("open doors %+v, want one", st.OpenDoors)
	}
	if o := st.OpenDoors[0]; o.Door != "ssh" || o.Src != "192.0.2.10" || o.Left < 3000 || o.Left > 3600 {
		t.Errorf("open door %+v, want ssh 192.0.2.10 with about an hour left", o)
	}
	if st.AttemptsTotal != 1 || len(st.Attempts) != 1 {
		t.Fatalf("attempts %+v, want one", st.Attempts)
	}
	if a := st.Attempts[0]; a.Door != "ssh" || a.Src != "192.0.2.11" || a.Step != 1 || a.Of != 3 || a.Left <= 0 || a.Left > 60 {
		t.Errorf("attempt %+v, want ssh 192.0.2.11 at step 1 of 3 with at most a minute left", a)
	}
	if len(st.Inputs) != 1 || st.Inputs[0].Events != 4 || st.Inputs[0].Skipped["unrecognized"] != 1 || st.Inputs[0].Counters["lines"] != 5 {
		t.Errorf("inputs %+v, want one with 4 events, 1 unrecognized, 5 lines", st.Inputs)
	}

	// What a client sends is never read: the answer is the same.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("reload\nstop\n"))
	reply, _ := io.ReadAll(c)
	c.Close()
	if !bytes.Contains(reply, []byte(`"open_doors_total":1`)) {
		t.Errorf("answer to a client that wrote: %s", reply)
	}

	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after stop: %v", err)
	}
	if _, err := QueryStatus(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after stop: %v, want ErrNotRunning", err)
	}
}

// TestStatusStaleSocket: a socket a dead daemon left is replaced; a file
// that is not a socket is left alone.
func TestStatusStaleSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, StatusSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	l, err := listenStatus(dir)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l.serve(ctx, nil)
	l.close()

	if err := os.WriteFile(sock, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenStatus(dir); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v, want refused", err)
	}
	if data, _ := os.ReadFile(sock); string(data) != "mine" {
		t.Errorf("the file was touched: %q", data)
	}
}

// TestStatusSlowClients: clients that connect and never read hold only
// their own connections; knocks still open doors, and the socket still
// answers once they are gone.
func TestStatusSlowClients(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	cfg := doorConfig(t, in, sig, "")
	start(t, cfg, Options{Status: true})
	sock := filepath.Join(cfg.Daemon.StateDir, StatusSocket)
	var conns []net.Conn
	for range 2 * statusConns {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	writeLines(t, in, "7000 192.0.2.10", "8000/tcp 192.0.2.10", "9000/udp 192.0.2.10")
	expect(t, ch, "open ssh 192.0.2.10")
	for _, c := range conns {
		c.Close()
	}
	// A client closed for being one too many may ask again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := QueryStatus(t.Context(), cfg.Daemon.StateDir)
		if err == nil && st.OpenDoorsTotal == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer showing the open door: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStatusUntrustedSocket: a socket in a directory anyone may write to,
// or one that anyone may write to itself, is not asked: whoever put it
// there could answer anything.
func TestStatusUntrustedSocket(t *testing.T) {
	for _, tc := range []struct {
		name          string
		dirMode, mode os.FileMode
		want          string
	}{
		{"directory writable by all", 0o777, 0o600, "others can write"},
		{"socket writable by group", 0o700, 0o660, "group can write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, StatusSocket)
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			answered := make(chan struct{})
			go func() {
				defer close(answered)
				if c, err := ln.Accept(); err == nil {
					c.Write([]byte(`{"version":"forged"}`))
					c.Close()
				}
			}()
			if err := os.Chmod(sock, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			st, err := QueryStatus(t.Context(), dir)
			if err == nil || !strings.Contains(err.Error(), "not trusted") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("QueryStatus: %+v, %v; want refused as %s", st, err, tc.want)
			}
			// The same socket, once trusted, is asked: the refusal was
			// the judgement, not a broken socket.
			os.Chmod(dir, 0o700)
			os.Chmod(sock, 0o600)
			if st, err := QueryStatus(t.Context(), dir); err != nil || st.Version != "forged" {
				t.Errorf("trusted again: %+v, %v; want the answer", st, err)
			}
			ln.Close()
			<-answered
		})
	}
}
