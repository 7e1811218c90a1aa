//go:build !unix

package textlog

import (
	"context"
	"errors"
	"log/slog"
	"os"
)

// openFIFO reports that FIFOs need a Unix system.
func openFIFO(context.Context, string, *slog.Logger) (*os.File, error) {
	return nil, errors.New("FIFOs are supported only on Unix systems")
}

// pollable returns in as it is: without Unix descriptors there is no way to
// make stdin's reads interruptible.
func pollable(in *os.File) (*os.File, func(), error) { return in, func() {}, nil }
