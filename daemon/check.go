package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"portknock/config"
	"portknock/internal/filetrust"
	"portknock/journal"
	"portknock/nftset"
	"portknock/sealed"
	"portknock/sequence"
)

// This file holds what `portknockd check` asks of the daemon: the same
// judgements New and Reload make, gathered so that check reports every
// problem at once instead of stopping at the first, and the warnings only
// check gives.

// CheckFiles judges, for a daemon running as uid with the given inputs
// (the configuration's and the command line's), every file cfg makes the
// daemon believe besides the configuration itself, with the checks New
// makes: inputs, one-time sequence files, key files and state_dir.
func CheckFiles(cfg *config.Config, inputs []config.Input, uid uint32) []error {
	var errs []error
	for _, d := range cfg.Doors {
		if d.OneTimeSequences != "" {
			for _, err := range filetrust.Split(CheckOneTime(d.OneTimeSequences, uid)) {
				errs = append(errs, fmt.Errorf("door %q: one-time sequences: %w", d.Name, err))
			}
		}
	}
	errs = append(errs, filetrust.Split(CheckInputs(inputs, uid))...)
	errs = append(errs, filetrust.Split(config.CheckKeys(cfg, uid))...)
	if UsesStateDir(cfg, cfg.Daemon.StateDir) {
		errs = append(errs, filetrust.Split(journal.CheckDir(cfg.Daemon.StateDir, uid))...)
	}
	return errs
}

// DoorsWithoutClose returns a warning for each door that never closes by
// itself: it has neither a stop command nor an nftables set, or its close
// has no time. Such a door is knockd's "command" style, and what it opens
// stays open until someone closes it by hand.
func DoorsWithoutClose(cfg *config.Config) []string {
	var out []string
	for i := range cfg.Doors {
		d := &cfg.Doors[i]
		switch {
		case !d.HasStop() && !d.HasSets():
			out = append(out, fmt.Sprintf("door %q has no close: no stop_command and no nft_set, so what its start_command opens stays open", d.Name))
		case d.CmdTimeout <= 0 && d.HasStop():
			out = append(out, fmt.Sprintf("door %q has no timed close: cmd_timeout is 0, so its stop_command runs only when portknockd stops", d.Name))
		case d.CmdTimeout <= 0:
			out = append(out, fmt.Sprintf("door %q has no timed close: cmd_timeout is 0, so its set elements never time out", d.Name))
		}
	}
	return out
}

// CheckStateDir says why a daemon running as uid might not be able to keep
// its state in dir: dir does not exist and cannot be made, or it cannot be
// written. The daemon still starts then, but refuses to open doors whose
// close it cannot record, and sealed doors; so this is a warning, and nil
// when dir looks usable. Trust is CheckFiles' to judge.
func CheckStateDir(dir string, uid uint32) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(filepath.Clean(dir))
		pfi, perr := os.Stat(parent)
		switch {
		case perr != nil:
			return fmt.Errorf("state_dir %s does not exist, nor does %s to make it in (with systemd, StateDirectory= makes it)", dir, parent)
		case !writableBy(pfi, uid):
			return fmt.Errorf("state_dir %s does not exist, and uid %d cannot make it in %s (with systemd, StateDirectory= makes it)", dir, uid, parent)
		}
		return fmt.Errorf("state_dir %s does not exist yet; the daemon makes it (mode 0700) at start", dir)
	}
	if err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state_dir %s is not a directory", dir)
	}
	if !writableBy(fi, uid) {
		return fmt.Errorf("state_dir %s is not writable by uid %d, whom the daemon runs as: doors with a timed close and sealed doors will not open", dir, uid)
	}
	return nil
}

// writableBy reports whether uid may create files in the directory fi
// describes, from its owner and mode alone. Group membership is not looked
// up: a directory the daemon believes is not group-writable anyway.
func writableBy(fi fs.FileInfo, uid uint32) bool {
	if uid == 0 {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // cannot tell: say nothing
	}
	mode := fi.Mode().Perm()
	if st.Uid == uid {
		return mode&0o300 == 0o300
	}
	return mode&0o003 == 0o003
}

// SetCheck is the outcome of looking up one door's nftables set.
type SetCheck struct {
	Door string
	config.DoorSet
	// Err is nil when the set is usable; it wraps os.ErrPermission when
	// the set could not be looked at (no CAP_NET_ADMIN).
	Err error
}

// LookupSets looks up every nftables set the doors name, as New and Reload
// do before they accept a configuration.
func LookupSets(cfg *config.Config, conn *nftset.Conn) []SetCheck {
	var out []SetCheck
	for _, d := range cfg.Doors {
		for _, ds := range d.Sets() {
			out = append(out, SetCheck{Door: d.Name, DoorSet: ds, Err: conn.Check(ds.Ref, ds.IPv6)})
		}
	}
	return out
}

// ReadDoorsOneTime reads each door's unused one-time sequences, by door
// name, without opening the files for writing.
func ReadDoorsOneTime(cfg *config.Config) (map[string][][]sequence.Step, error) {
	out := make(map[string][][]sequence.Step)
	for _, d := range cfg.Doors {
		if d.OneTimeSequences == "" {
			continue
		}
		unused, err := ReadOneTime(d.OneTimeSequences)
		if err != nil {
			return nil, fmt.Errorf("door %q: %w", d.Name, err)
		}
		out[d.Name] = unused
	}
	return out, nil
}

// OneTimeInSealedRanges returns a warning for each unused one-time sequence
// with a knock in a sealed range: the daemon refuses such a sequence (at
// start, or disables its door when it comes up), but only the current one
// is known before then.
func OneTimeInSealedRanges(cfg *config.Config, oneTime map[string][][]sequence.Step) []string {
	var out []string
	for _, d := range cfg.Doors {
		for i, steps := range oneTime[d.Name] {
			for _, st := range steps {
				if r := rangeOf(cfg, st); r != nil {
					out = append(out, fmt.Sprintf("door %q: unused one-time sequence %d (%s) has knock %v in the sealed range %s of door %q; the door is disabled when it comes up",
						d.Name, i+1, joinSteps(steps), st, r, r.Doors[0]))
					break
				}
			}
		}
	}
	return out
}

// rangeOf returns the sealed range st lies in, or nil.
func rangeOf(cfg *config.Config, st sequence.Step) *config.SealedRange {
	for _, r := range cfg.SealedRanges() {
		if r.Proto == st.Proto && int(st.Port) >= int(r.Base) && int(st.Port) < int(r.Base)+sealed.Span {
			return &r
		}
	}
	return nil
}

func joinSteps(steps []sequence.Step) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}
