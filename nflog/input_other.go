//go:build !linux

package nflog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"portknock/sequence"
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

// Stats counts what an Input saw; always zero here.
type Stats struct {
	Packets, Events, Overflow, KernelDrops, Overruns, BatchSwitches uint64
	Skipped                                                         [reasonCount]uint64
}

// Stats returns zero counters.
func (in *Input) Stats() Stats { return Stats{} }

// Run reports that NFLOG needs Linux.
func (in *Input) Run(context.Context, func(*sequence.Event) bool) error {
	return errors.New("NFLOG input needs Linux; use a text input with the firewall's log")
}
