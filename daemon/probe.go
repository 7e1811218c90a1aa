package daemon

import (
	"errors"
	"fmt"
	"io/fs"

	"portknock/config"
	"portknock/nflog"
	"portknock/textlog"
)

// ProbeTextInputs opens every FIFO and file input as the daemon will and
// closes it again (see textlog.ProbeInput). It returns, each naming its
// input, the files that do not exist yet, which the daemon waits for, and
// the problems that would stop it.
func ProbeTextInputs(inputs []config.Input) (notYet []error, err error) {
	var errs []error
	for _, in := range inputs {
		if in.Type != config.InputText {
			continue
		}
		perr := textlog.ProbeInput(in.Path)
		switch {
		case perr == nil:
		case errors.Is(perr, fs.ErrNotExist):
			notYet = append(notYet, fmt.Errorf("input %s: %w", in.String(), perr))
		default:
			errs = append(errs, fmt.Errorf("input %s: %w", in.String(), perr))
		}
	}
	return notYet, errors.Join(errs...)
}

// probeInputs makes sure, before the daemon says it has started, that every
// input can open: FIFOs and files open (one not there yet is waited for,
// with a warning when its input starts), and NFLOG groups bind. Syslog
// listeners bind for good when their source is made.
func probeInputs(inputs []config.Input) error {
	if _, err := ProbeTextInputs(inputs); err != nil {
		return err
	}
	for _, in := range inputs {
		if in.Type != config.InputNFLOG {
			continue
		}
		n := nflog.Input{Groups: in.Groups}
		if err := n.Probe(); err != nil {
			return fmt.Errorf("input %s: %w", in.String(), err)
		}
	}
	return nil
}
