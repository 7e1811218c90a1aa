// Package journal keeps the doors that portknockd must still close in a file
// that outlives the daemon, so that a crash, a kill -9 or a power cut never
// leaves a door open: the next start runs every close that fell due while
// the daemon was away and schedules the rest.
//
// The file is an append-only log, one record per line: a pending close when
// a door opens (written and fsynced before the door's start command runs), a
// new due time when a re-knock extends it, and its end when the close has
// run. Each line carries a CRC-32C of its JSON body, so that a torn write or
// a damaged sector is found, reported and set aside without costing the
// records around it. The log is rewritten (atomically, through a temporary
// file and rename) when it has grown to several times the records still
// pending, and at every start.
package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strconv"
	"time"

	"portknock/command"
)

// Record is one pending close: the door opened for Src, and the command that
// closes it at Due. The stop command is stored as substituted when the door
// opened, so that a changed or removed door still closes the way it opened.
type Record struct {
	// ID is assigned by Journal.Add and names the record in later lines.
	ID   uint64
	Door string
	Src  netip.Addr
	Due  time.Time
	// For is how long the door was opened for (its cmd_timeout), zero in
	// records written before it was kept. No close can be due further
	// ahead than that, so a restart whose clock reads earlier than the
	// one that wrote Due (no RTC at boot, a clock stepped back) still
	// closes the door within For instead of when the clock catches up.
	For  time.Duration
	Stop command.Command
}

// op is what a line says about a record.
type op string

const (
	opOpen   op = "open"   // a new pending close, with every field
	opExtend op = "extend" // a new due time for ID
	opDone   op = "done"   // ID's close has run, or been given up
)

// line is the JSON body of one journal line.
type line struct {
	Op    op         `json:"op"`
	ID    uint64     `json:"id"`
	Door  string     `json:"door,omitempty"`
	Src   netip.Addr `json:"src,omitzero"`
	Due   time.Time  `json:"due,omitzero"`
	For   duration   `json:"for,omitzero"`
	Shell string     `json:"shell,omitempty"`
	Argv  []string   `json:"argv,omitempty"`
}

// duration is a positive time.Duration written as Go prints it ("30s"),
// readable in the file and parsed once, by decode.
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v <= 0 {
		return fmt.Errorf("for %q is not a positive duration", b)
	}
	*d = duration(v)
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encode renders one journal line, newline included: eight hex digits of
// the CRC-32C of the JSON body, a space, the body. It fails only for times
// JSON cannot hold (years outside 0–9999).
func encode(l line) ([]byte, error) {
	body, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encoding a journal record: %w", err)
	}
	return append(checksummed(body), '\n'), nil
}

// checksummed prefixes body with its checksum field.
func checksummed(body []byte) []byte {
	out := make([]byte, 0, 10+len(body))
	out = fmt.Appendf(out, "%08x ", crc32.Checksum(body, castagnoli))
	return append(out, body...)
}

// decode parses one line without its newline. Any error means the line is
// damaged: it is reported and set aside, never guessed at.
func decode(b []byte) (line, error) {
	var l line
	if len(b) < 10 || b[8] != ' ' {
		return l, errors.New("not a journal line")
	}
	want, err := strconv.ParseUint(string(b[:8]), 16, 32)
	if err != nil {
		return l, errors.New("bad checksum field")
	}
	body := b[9:]
	if crc32.Checksum(body, castagnoli) != uint32(want) {
		return l, errors.New("checksum mismatch")
	}
	// Fields this version does not know are skipped, not damage (the
	// checksum finds damage): a journal written by a newer portknockd
	// still closes its doors after a downgrade.
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("bad record: %v", err)
	}
	if dec.More() {
		return l, errors.New("bad record: trailing data")
	}
	if l.ID == 0 {
		return l, errors.New("bad record: no id")
	}
	switch l.Op {
	case opOpen:
		if l.Door == "" || !l.Src.IsValid() || l.Due.IsZero() {
			return l, errors.New("bad record: open without door, src or due")
		}
		if (l.Shell == "") == (len(l.Argv) == 0) {
			return l, errors.New("bad record: open needs exactly one of shell and argv")
		}
	case opExtend:
		if l.Due.IsZero() {
			return l, errors.New("bad record: extend without due")
		}
	case opDone:
	default:
		return l, fmt.Errorf("bad record: unknown op %q", l.Op)
	}
	return l, nil
}

func openLine(r Record) line {
	return line{Op: opOpen, ID: r.ID, Door: r.Door, Src: r.Src, Due: r.Due.UTC(), For: duration(max(r.For, 0)), Shell: r.Stop.Shell, Argv: r.Stop.Argv}
}

// Damage is one line of a journal that could not be read.
type Damage struct {
	// Line is the line number in the file, from 1.
	Line int
	// Reason says what is wrong with it.
	Reason string
	// Text is the line as found, without its newline.
	Text []byte
}

// replay reads a whole journal file and returns the records still pending,
// in the order they were added, the damaged lines, and the highest ID seen.
// A last line without a newline was cut short by a crash and counts as
// damaged. Lines about IDs not (or no longer) pending are ignored: they are
// left by compaction races or follow a damaged open line, which is already
// reported.
func replay(data []byte) (pending []Record, damaged []Damage, maxID uint64) {
	byID := make(map[uint64]int) // ID → index in pending
	n := 0
	for len(data) > 0 {
		n++
		raw, rest, found := bytes.Cut(data, []byte{'\n'})
		data = rest
		if !found {
			damaged = append(damaged, Damage{Line: n, Reason: "cut short (no newline)", Text: raw})
			break
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		l, err := decode(raw)
		if err != nil {
			damaged = append(damaged, Damage{Line: n, Reason: err.Error(), Text: raw})
			continue
		}
		maxID = max(maxID, l.ID)
		i, known := byID[l.ID]
		switch l.Op {
		case opOpen:
			r := Record{ID: l.ID, Door: l.Door, Src: l.Src, Due: l.Due, For: time.Duration(l.For), Stop: command.Command{Shell: l.Shell, Argv: l.Argv}}
			if known {
				pending[i] = r
				continue
			}
			byID[l.ID] = len(pending)
			pending = append(pending, r)
		case opExtend:
			if known {
				pending[i].Due = l.Due
			}
		case opDone:
			if known {
				pending[i].ID = 0 // removed below, keeping indexes stable
				delete(byID, l.ID)
			}
		}
	}
	live := pending[:0]
	for _, r := range pending {
		if r.ID != 0 {
			live = append(live, r)
		}
	}
	return live, damaged, maxID
}
