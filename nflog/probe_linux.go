package nflog

import (
	"context"
	"fmt"

	gonflog "github.com/florianl/go-nflog/v2"
)

// Probe binds every group of in and lets it go again, so that a daemon can
// report a missing capability or a group another process holds before it
// says it has started, rather than after. Run binds again: a group taken
// in between still fails Run, with the same message.
func (in *Input) Probe() error {
	for _, g := range in.Groups {
		nf, err := gonflog.Open(&gonflog.Config{Group: g, Copymode: gonflog.CopyPacket, NetNS: in.NetNS})
		if err != nil {
			return fmt.Errorf("NFLOG group %d: opening netlink socket: %w", g, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		err = nf.RegisterWithErrorFunc(ctx, func(gonflog.Attribute) int { return 0 }, func(error) int { return 1 })
		cancel()
		nf.Close()
		if err != nil {
			return explainBindError(g, err)
		}
	}
	return nil
}
