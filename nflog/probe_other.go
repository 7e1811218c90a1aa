//go:build !linux

package nflog

import "errors"

// Probe reports that NFLOG needs Linux, as Run does.
func (in *Input) Probe() error {
	return errors.New("NFLOG input needs Linux; use a text input with the firewall's log")
}
