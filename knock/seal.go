package knock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"portknock/sealed"
	"portknock/sequence"
)

// seal makes a sealed plan's 16 knocks for the resolved address dst: it
// settles the block's source, seals one block with the current time and a
// fresh nonce, and spells its ciphertext as ports.
//
// The knocks go out in index order (knock i on base + 256·i + C[i]). The
// daemon does not care about order, and a random order would hide nothing:
// each port names its own position, so anyone who sees the set sorts it
// back. Index order keeps the -v output readable as the block it is.
func (r Runner) seal(ctx context.Context, dst netip.Addr, s *Sealed) ([]sequence.Step, error) {
	src, how, err := r.source(ctx, dst, s)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	rnd := r.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var nonce [4]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return nil, fmt.Errorf("reading a random nonce: %w", err)
	}
	t := now()
	c := sealed.NewSealer(s.Key).Seal(t, nonce, src, s.ID)
	if r.Verbose != nil {
		srcText := "none (unbound: only doors with bind_source = false accept it)"
		if src.IsValid() {
			srcText = src.String() + " (" + how + ")"
		}
		fmt.Fprintf(r.Verbose, "sealed block for door id %d: source %s, time %d (%s), nonce %s\n",
			s.ID, srcText, uint32(t.Unix()), t.UTC().Format(time.RFC3339), hex.EncodeToString(nonce[:]))
	}
	ports := sealed.Ports(s.Base, c)
	knocks := make([]sequence.Step, len(ports))
	for i, p := range ports {
		knocks[i] = sequence.Step{Port: p, Proto: s.Proto}
	}
	return knocks, nil
}

// source returns the address a sealed block is bound to (invalid for an
// unbound block) and, for -v, how it was chosen.
func (r Runner) source(ctx context.Context, dst netip.Addr, s *Sealed) (netip.Addr, string, error) {
	switch {
	case s.Unbound:
		return netip.Addr{}, "", nil
	case s.Source.IsValid():
		return s.Source, "--source", nil
	}
	if r.Router == nil {
		return netip.Addr{}, "", errors.New("knock: Runner needs a Router to choose a sealed knock's source")
	}
	// The base port stands for all 16: routes that depend on the
	// destination port are too rare to ask the kernel 16 times.
	src, err := r.Router.LocalAddr(ctx, netip.AddrPortFrom(dst, s.Base))
	if err == nil && (!src.IsValid() || src.IsUnspecified()) {
		err = errors.New("the kernel named no address")
	}
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("cannot tell this machine's address toward %s: %w; give it with --source ADDR (or --source none)", dst, err)
	}
	src = src.Unmap().WithZone("")
	if r.Notes != nil && behindNAT(src, dst) {
		fmt.Fprintf(r.Notes, "portknock: note: this machine's address %s is private and %s is not, so a NAT probably changes it on the way; "+
			"the door then refuses the knock (reason=source): give your public address with --source ADDR\n", src, dst)
	}
	return src, "this machine's address toward " + dst.String(), nil
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), which
// netip.Addr.IsPrivate does not count.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// behindNAT reports whether a knock from src to dst almost surely crosses
// a NAT: a private source (RFC 1918, RFC 6598, IPv6 ULA) cannot reach a
// public destination otherwise.
func behindNAT(src, dst netip.Addr) bool {
	private := src.IsPrivate() || cgnat.Contains(src)
	public := dst.IsGlobalUnicast() && !dst.IsPrivate() && !cgnat.Contains(dst)
	return private && public
}
