//go:build !linux

package nflog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"portknock/input"
)

// Input reads NFLOG groups; NFLOG exists only on Linux, so elsewhere Run
// fails at once and text inputs must be used.
type Input struct {
	Name       string
	Groups     []uint16
	Prefix     string
	ReadBuffer int
	SnapLen    uint32
	NetNS      int
	Now        func() time.Time
	Logger     *slog.Logger

	BatchAbove, BatchBelow int
	BatchQueue             uint32
	BatchTimeout           time.Duration
}

// Stats returns zero counters, the same ones as on Linux.
func (in *Input) Stats() input.Stats {
	return input.Stats{Unit: "packets", Counters: counters(0, 0, 0)}
}

// Run reports that NFLOG needs Linux.
func (in *Input) Run(context.Context, input.Emit) error {
	return errors.New("NFLOG input needs Linux; use a text input with the firewall's log")
}
