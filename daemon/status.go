package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"portknock/internal/buildinfo"
	"portknock/internal/filetrust"
	"portknock/journal"
)

// StatusSocket is the name of the status socket in state_dir.
const StatusSocket = "portknockd.sock"

// The status socket's bounds: what one answer may take, how many are
// answered at once (others are closed at once), and the most a client
// reads.
const (
	// maxOpenListed bounds the open doors a status reply lists and the
	// metrics count by door: a door open for more addresses than this
	// is counted as this many.
	maxOpenListed  = 1000
	statusTimeout  = 5 * time.Second
	statusConns    = 4
	maxStatusReply = 4 << 20
)

// Status is what the status socket answers: a snapshot of the running
// daemon, as JSON.
type Status struct {
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	// OpenDoors lists the (door, address) pairs open now, those closing
	// first first, at most 1000 of them; OpenDoorsTotal counts them all.
	OpenDoors      []StatusOpen `json:"open_doors"`
	OpenDoorsTotal int          `json:"open_doors_total"`
	// Attempts lists the knocks in progress closest to their timeout, at
	// most MaxListed; AttemptsTotal counts them all.
	Attempts      []StatusAttempt `json:"attempts"`
	AttemptsTotal int             `json:"attempts_total"`
	Inputs        []StatusInput   `json:"inputs"`
	Matcher       StatusMatcher   `json:"matcher"`
	Commands      StatusCommands  `json:"commands"`
}

// StatusOpen is one open door.
type StatusOpen struct {
	Door  string    `json:"door"`
	Src   string    `json:"src"`
	Until time.Time `json:"until"`
	// Left is the time left, in seconds.
	Left float64 `json:"left"`
}

// StatusAttempt is one knock in progress.
type StatusAttempt struct {
	Door  string  `json:"door,omitempty"`
	Range string  `json:"range,omitempty"` // a sealed range, for a sealed attempt
	Src   string  `json:"src"`
	Step  int     `json:"step"`
	Of    int     `json:"of"`
	Left  float64 `json:"left"` // seconds until seq_timeout ends it
}

// StatusMatcher is the matcher's totals.
type StatusMatcher struct {
	Events      uint64 `json:"events"`
	Outside     uint64 `json:"outside"`
	Matches     uint64 `json:"matches"`
	WrongKnocks uint64 `json:"wrong_knocks"`
	Timeouts    uint64 `json:"timeouts"`
	Evictions   uint64 `json:"evictions"`
	Sources     int    `json:"sources"`
}

// StatusCommands is the command runner's totals.
type StatusCommands struct {
	Started       uint64 `json:"started"`
	Failed        uint64 `json:"failed"`
	PendingCloses int    `json:"pending_closes"`
}

// status builds the answer from a snapshot and the runner's and inputs'
// own counters.
func (d *Daemon) status(ctx context.Context) (*Status, error) {
	snap, err := d.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	now := d.now()
	st := &Status{Version: buildinfo.Version("portknockd"), Time: now}
	open, total := d.runner.OpenDoors(now, maxOpenListed)
	st.OpenDoorsTotal = total
	for _, o := range open {
		st.OpenDoors = append(st.OpenDoors, StatusOpen{Door: o.Door, Src: o.Src.String(), Until: o.Until, Left: o.Until.Sub(now).Seconds()})
	}
	// The attempts' time left counts from when the snapshot was taken.
	age := d.mono() - snap.taken
	st.AttemptsTotal = snap.attemptsTotal
	for _, a := range snap.attempts {
		st.Attempts = append(st.Attempts, StatusAttempt{Door: a.Door, Range: a.Range, Src: a.Src.String(),
			Step: a.Step, Of: a.Of, Left: max(a.Left-age, 0).Seconds()})
	}
	for _, in := range d.InputStats() {
		st.Inputs = append(st.Inputs, statusInput(in))
	}
	ms := snap.stats
	st.Matcher = StatusMatcher{Events: ms.Events, Outside: ms.Outside, Matches: ms.Matches, WrongKnocks: ms.WrongKnocks,
		Timeouts: ms.Timeouts, Evictions: ms.Evictions, Sources: ms.Sources}
	rs := d.runner.Stats()
	st.Commands = StatusCommands{Started: rs.Started, Failed: rs.Failed, PendingCloses: rs.PendingCloses}
	return st, nil
}

// statusListener is the status socket. It reads nothing from its
// clients: each connection gets one answer and is closed, so nothing
// sent to it can change anything. Answers come from a snapshot at most
// snapshotMaxAge old, so that clients cannot make the matcher's loop do
// more than take one now and then; each is written within statusTimeout,
// so that a client that does not read only holds its own connection.
type statusListener struct {
	ln   *net.UnixListener
	path string
	fi   fs.FileInfo // the socket as made, so that close removes only ours
	sem  chan struct{}
}

// listenStatus makes the status socket in state_dir, 0600: only root and
// the daemon's user may connect. state_dir is judged first, as for the
// journal, and made (0700) if it does not exist. A socket another daemon
// answers on is left alone; a stale one is replaced.
func listenStatus(dir string) (*statusListener, error) {
	dir = filepath.Clean(dir)
	if err := journal.CheckDir(dir, uint32(os.Geteuid())); err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, fmt.Errorf("state_dir: %w", err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("state_dir: %w", err)
		}
	}
	path := filepath.Join(dir, StatusSocket)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s: exists and is not a socket; not touching it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: in use by another portknockd", path)
		}
	}
	// Bound under a name of its own and made private before it takes
	// the real name: no one connects before its mode says who may. The
	// name is fixed, so that one a crash left between bind and rename is
	// removed by the next start.
	tmp := filepath.Join(dir, "."+StatusSocket+".tmp")
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*statusListener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &statusListener{ln: ln, path: path, fi: fi, sem: make(chan struct{}, statusConns)}, nil
}

// serve answers until ctx ends.
func (l *statusListener) serve(ctx context.Context, d *Daemon) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.ln.Close() })
	defer stop()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("status socket stopped", "path", l.path, "err", err)
			}
			return
		}
		select {
		case l.sem <- struct{}{}:
		default:
			c.Close() // busy: the client may ask again
			continue
		}
		wg.Go(func() {
			defer func() { <-l.sem }()
			defer c.Close()
			deadline := time.Now().Add(statusTimeout)
			c.SetDeadline(deadline)
			actx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			st, err := d.status(actx)
			var reply any = st
			if err != nil {
				reply = map[string]string{"error": err.Error()}
			}
			_ = json.NewEncoder(c).Encode(reply)
		})
	}
}

// close stops listening and removes the socket, if it is still ours.
func (l *statusListener) close() {
	l.ln.Close()
	if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.fi) {
		os.Remove(l.path)
	}
}

// trustSocket judges the status socket at path (see QueryStatus). Anything
// but a socket is left to the dial, which says that no daemon runs.
func trustSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil // no Unix owner to judge
	}
	if err := filetrust.CheckAs(path, filetrust.State, st.Uid); err != nil {
		return fmt.Errorf("not asking the status socket: %w", err)
	}
	return nil
}

// ErrNotRunning is QueryStatus's error when no daemon answers: the socket
// is missing or refuses connections.
var ErrNotRunning = errors.New("no portknockd is running")

// QueryStatus asks the daemon whose state_dir is dir for its status.
//
// The answer is believed and printed to an administrator, so the socket
// must be one that only root or its owner could have put there: its owner
// and every directory on the way are judged as the daemon judges state_dir
// before it starts, with the socket's owner as the daemon's user. A socket
// the daemon made always passes.
func QueryStatus(ctx context.Context, dir string) (*Status, error) {
	path := filepath.Join(dir, StatusSocket)
	if err := trustSocket(path); err != nil {
		return nil, err
	}
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			why := err
			var se *os.SyscallError
			if errors.As(err, &se) {
				why = se.Err
			}
			return nil, fmt.Errorf("%w with state_dir %s (%s: %v)", ErrNotRunning, dir, path, why)
		}
		return nil, fmt.Errorf("status socket: %w", err)
	}
	defer c.Close()
	deadline := time.Now().Add(2 * statusTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	data, err := io.ReadAll(io.LimitReader(c, maxStatusReply+1))
	if err != nil {
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	if len(data) > maxStatusReply {
		return nil, fmt.Errorf("status socket %s: answer longer than %d bytes", path, maxStatusReply)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("status socket %s: no answer (the daemon is busy with other status requests or stopping; try again)", path)
	}
	var reply struct {
		Status
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	if reply.Error != "" {
		return nil, fmt.Errorf("status socket %s: the daemon says: %s", path, reply.Error)
	}
	return &reply.Status, nil
}
