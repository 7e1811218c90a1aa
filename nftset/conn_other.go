//go:build !linux

package nftset

import (
	"errors"
	"net/netip"
	"time"
)

// errNotLinux is every call's answer: nftables exists only on Linux.
var errNotLinux = errors.New("nftables sets need Linux; use a command action with the firewall's own tool")

// Conn changes nftables sets; elsewhere than on Linux every call fails.
type Conn struct{}

// Option configures a Conn.
type Option func(*Conn)

// WithNetNS is accepted for the same code to build everywhere.
func WithNetNS(fd int) Option { return func(*Conn) {} }

// New returns a Conn whose calls fail.
func New(opts ...Option) *Conn { return &Conn{} }

// Check reports that nftables needs Linux.
func (c *Conn) Check(ref Ref, ipv6 bool) error { return errNotLinux }

// Add reports that nftables needs Linux.
func (c *Conn) Add(ref Ref, addr netip.Addr, timeout time.Duration) error { return errNotLinux }

// Delete reports that nftables needs Linux.
func (c *Conn) Delete(ref Ref, addr netip.Addr) error { return errNotLinux }
