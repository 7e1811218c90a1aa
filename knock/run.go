package knock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"portknock/sequence"
)

// Resolver looks up a host name. *net.Resolver satisfies it; tests pass a
// fake so that resolution rules are checked without DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Resolve turns host into the one address every knock of a sequence goes
// to. A literal address is used as it is, without asking the resolver;
// an IPv4-mapped IPv6 literal is unmapped, because the packet on the wire
// is IPv4 either way and an IPv4 socket is the honest way to send it.
// A literal of the wrong family is a *UsageError. For a name, the
// resolver's first answer of the wanted family wins: the system's resolver
// already sorts answers by preference (RFC 6724).
func Resolve(ctx context.Context, r Resolver, host string, fam Family) (netip.Addr, error) {
	name := strings.TrimSpace(host)
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		name = name[1 : len(name)-1]
	}
	if name == "" {
		return netip.Addr{}, fmt.Errorf("empty host")
	}
	if a, err := netip.ParseAddr(name); err == nil {
		a = unmap(a)
		if !fam.allows(a) {
			// The command line contradicts itself; no lookup can fix that.
			return netip.Addr{}, usagef("%s is not an %s address", host, fam)
		}
		return a, nil
	}
	addrs, err := r.LookupNetIP(ctx, fam.Network(), name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("cannot resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		// Resolvers hand back IPv4 answers as mapped IPv6 addresses at
		// times; unmapping first keeps them from failing the family check.
		if a = unmap(a); a.IsValid() && fam.allows(a) {
			return a, nil
		}
	}
	if fam == AnyFamily {
		return netip.Addr{}, fmt.Errorf("cannot resolve %s: no address found", host)
	}
	return netip.Addr{}, fmt.Errorf("cannot resolve %s: no %s address found", host, fam)
}

func unmap(a netip.Addr) netip.Addr {
	if a.Is4In6() {
		return a.Unmap()
	}
	return a
}

func (f Family) allows(a netip.Addr) bool {
	switch f {
	case IPv4:
		return a.Is4()
	case IPv6:
		return a.Is6()
	}
	return true
}

// Sender sends one knock. It returns nil once the packet has been handed to
// the kernel: a knock gets no answer worth waiting for, since the server's
// firewall drops it.
type Sender interface {
	Send(ctx context.Context, dst netip.AddrPort, proto sequence.Proto) error
}

// Router tells which local address the kernel would send from to reach a
// destination. Net is the real one; tests pass a fake, so that choosing a
// sealed block's source is checked without a network.
type Router interface {
	LocalAddr(ctx context.Context, dst netip.AddrPort) (netip.Addr, error)
}

// Runner runs plans. Its fields are the outside world, so that a test can
// replace each of them.
type Runner struct {
	Resolver Resolver
	Sender   Sender
	// Router finds a sealed block's source when the plan leaves it to the
	// kernel; only sealed plans need it.
	Router Router
	// Sleep waits d or until ctx is done; nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock a sealed block's time comes from; nil means
	// time.Now.
	Now func() time.Time
	// Rand supplies a sealed block's nonce; nil means crypto/rand.
	Rand io.Reader
	// Verbose, when not nil, receives a line per knock before it is sent,
	// in knock's words: "hitting tcp 192.0.2.1:7000"; for a sealed knock
	// a line about the block comes first.
	Verbose io.Writer
	// Notes, when not nil, receives advice that does not stop the knock,
	// such as a source address that looks like it is behind a NAT.
	Notes io.Writer
}

// SendError reports a knock that could not be sent; the sequence stops
// there, since the server would see it incomplete anyway.
type SendError struct {
	// Index counts knocks from 1; Total is the sequence's length.
	Index, Total int
	Knock        sequence.Step
	Dst          netip.AddrPort
	Err          error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("knock %d of %d (%s %s): %v", e.Index, e.Total, e.Knock.Proto, e.Dst, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Run resolves the plan's host once and sends its knocks in order. One
// resolution for the whole sequence is the point: a host with both IPv4
// and IPv6 addresses must not get half a sequence on each, which the
// server would see as two incomplete knocks from two sources. A sealed
// plan's knocks are made after the resolution, for that one address.
func (r Runner) Run(ctx context.Context, p Plan) error {
	if r.Resolver == nil || r.Sender == nil {
		return errors.New("knock: Runner needs a Resolver and a Sender")
	}
	addr, err := Resolve(ctx, r.Resolver, p.Host, p.Family)
	if err != nil {
		return err
	}
	knocks := p.Knocks
	if p.Sealed != nil {
		if knocks, err = r.seal(ctx, addr, p.Sealed); err != nil {
			return err
		}
	}
	return r.send(ctx, addr, knocks, p.Delay)
}

// send sends knocks to addr in order, delay apart.
func (r Runner) send(ctx context.Context, addr netip.Addr, knocks []sequence.Step, delay time.Duration) error {
	sleep := r.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for i, k := range knocks {
		if i > 0 && delay > 0 {
			if err := sleep(ctx, delay); err != nil {
				return fmt.Errorf("stopped after %d of %d knocks: %w", i, len(knocks), err)
			}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped after %d of %d knocks: %w", i, len(knocks), err)
		}
		dst := netip.AddrPortFrom(addr, k.Port)
		if r.Verbose != nil {
			fmt.Fprintf(r.Verbose, "hitting %s %s\n", k.Proto, dst)
		}
		if err := r.Sender.Send(ctx, dst, k.Proto); err != nil {
			return &SendError{Index: i + 1, Total: len(knocks), Knock: k, Dst: dst, Err: err}
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
