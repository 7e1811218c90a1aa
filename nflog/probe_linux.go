package nflog

import (
	"context"

	"portknock/input"
	"portknock/sequence"
)

// probeReadBuffer is the receive buffer of a probing socket, which reads
// nothing worth keeping.
const probeReadBuffer = 64 << 10

// Probe binds every group of in, as Run does, and lets it go again, so
// that a daemon can report a missing capability or a group another process
// holds before it says it has started, rather than after. Run binds again:
// a group taken in between still fails Run, with the same message.
func (in *Input) Probe() error {
	if err := in.resolve(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Taken and forgotten: a refusal would make the reader wait for room.
	drop := func(*sequence.Event, input.Mode) bool { return true }
	for _, g := range in.Groups {
		s, err := in.dial(ctx, g, DefaultSnapLen, probeReadBuffer, drop)
		if err != nil {
			return err
		}
		s.close()
	}
	return nil
}
