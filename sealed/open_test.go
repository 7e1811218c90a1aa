package sealed

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestReasonNames(t *testing.T) {
	want := map[Reason]string{ReasonKey: "key", ReasonSource: "source", ReasonSkew: "skew", ReasonReplay: "replay", ReasonDoor: "door"}
	for r, name := range want {
		if r.String() != name {
			t.Errorf("Reason %d String = %q, want %q", r, r.String(), name)
		}
		var err error = r
		var got Reason
		if !errors.As(err, &got) || got != r {
			t.Errorf("errors.As(%v) = %v", err, got)
		}
		if r.Error() == "" || r.Error() == name {
			t.Errorf("Reason %s has no description: %q", name, r.Error())
		}
	}
	if Reason(0).String() != "Reason(0)" || Reason(99).String() != "Reason(99)" {
		t.Errorf("unknown reasons print as %q and %q", Reason(0), Reason(99))
	}
}

// TestOpen judges sealed blocks from a fixed sender against policies and
// receivers, one reason at a time.
func TestOpen(t *testing.T) {
	k := vectorKey()
	s := NewSealer(k)
	o := NewOpener(k)
	t0 := time.Unix(1767225600, 0)
	nonce := [4]byte{1, 2, 3, 4}
	v4 := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	none := netip.Addr{}
	bind := Policy{BindSource: true, MaxSkew: 30 * time.Second}
	loose := Policy{BindSource: false, MaxSkew: 30 * time.Second}

	other := k
	other[0] ^= 1

	tests := []struct {
		name   string
		sealer *Sealer
		sealed netip.Addr // the client's idea of its source
		from   netip.Addr // the source the daemon sees
		now    time.Time
		policy Policy
		want   Reason // 0: accepted
	}{
		{"bound v4", s, v4, v4, t0, bind, 0},
		{"bound v6", s, v6, v6, t0, bind, 0},
		{"bound block, loose door", s, v4, v4, t0, loose, 0},
		{"unbound block, loose door", s, none, v4, t0, loose, 0},
		{"unbound block, binding door", s, none, v4, t0, bind, ReasonSource},
		{"another address", s, v4, netip.MustParseAddr("192.0.2.2"), t0, bind, ReasonSource},
		{"another address, loose door", s, v4, netip.MustParseAddr("192.0.2.2"), t0, loose, ReasonSource},
		{"v4 sealed, v6 seen", s, v4, v6, t0, bind, ReasonSource},
		{"mapped sealed, v4 seen", s, netip.MustParseAddr("::ffff:192.0.2.1"), v4, t0, bind, 0},
		{"v4 sealed, mapped seen", s, v4, netip.MustParseAddr("::ffff:192.0.2.1"), t0, bind, 0},
		{"zone ignored", s, netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::1"), t0, bind, 0},
		{"no source seen", s, v4, none, t0, bind, ReasonSource},
		{"unbound, no source seen, loose door", s, none, none, t0, loose, 0},
		{"skew at the limit ahead", s, v4, v4, t0.Add(-30 * time.Second), bind, 0},
		{"skew at the limit behind", s, v4, v4, t0.Add(30*time.Second + 999*time.Millisecond), bind, 0},
		{"skew past the limit ahead", s, v4, v4, t0.Add(-31 * time.Second), bind, ReasonSkew},
		{"skew past the limit behind", s, v4, v4, t0.Add(31 * time.Second), bind, ReasonSkew},
		{"zero skew allowed", s, v4, v4, t0, Policy{BindSource: true}, 0},
		{"zero skew, a second late", s, v4, v4, t0.Add(time.Second), Policy{BindSource: true}, ReasonSkew},
		{"years off", s, v4, v4, t0.AddDate(10, 0, 0), bind, ReasonSkew},
		{"wrong key", NewSealer(other), v4, v4, t0, bind, ReasonKey},
		// Source is judged before time: a stale block for another address
		// says source, the cheaper hint to act on.
		{"another address and stale", s, v4, v6, t0.Add(time.Hour), bind, ReasonSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.sealer.Seal(t0, nonce, tt.sealed, 9)
			b, err := o.Open(c, tt.from, tt.now, tt.policy)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
			} else {
				var r Reason
				if !errors.As(err, &r) || r != tt.want {
					t.Fatalf("Open error = %v, want %s", err, tt.want)
				}
			}
			if tt.want == ReasonKey {
				if b != (Block{}) {
					t.Errorf("Open returned %+v with a key rejection", b)
				}
				return
			}
			// Whenever the block decrypts, the caller gets it.
			if b.ID != 9 || b.Time != uint32(t0.Unix()) || b.Nonce != nonce {
				t.Errorf("Open returned %+v", b)
			}
			if b.Bound() != tt.sealed.IsValid() {
				t.Errorf("Bound() = %v for a block sealed for %v", b.Bound(), tt.sealed)
			}
			if tt.want == ReasonSkew {
				if got, want := b.Skew(tt.now), t0.Sub(tt.now).Truncate(time.Second); got != want && got != want-time.Second {
					t.Errorf("Skew = %v, want about %v", got, want)
				}
			}
		})
	}
}

// TestOpenRejectsEveryBitFlip flips each bit of each vector's ciphertext:
// AES spreads one flipped bit over the whole block, so the magic breaks.
func TestOpenRejectsEveryBitFlip(t *testing.T) {
	o := NewOpener(vectorKey())
	for _, v := range vectors {
		c := v.cipherBytes(t)
		for bit := range 8 * BlockSize {
			f := c
			f[bit/8] ^= 1 << (bit % 8)
			if _, err := o.Decrypt(f); err != ReasonKey {
				t.Errorf("%s: bit %d flipped: Decrypt error %v, want key", v.name, bit, err)
			}
		}
	}
}

func TestOpenDoors(t *testing.T) {
	k := vectorKey()
	s := NewSealer(k)
	o := NewOpener(k)
	t0 := time.Unix(1767225600, 0)
	src := netip.MustParseAddr("192.0.2.1")
	doors := []Door{
		{ID: 1, Policy: Policy{BindSource: true, MaxSkew: 30 * time.Second}}, // open
		{ID: 2, Policy: Policy{BindSource: false, MaxSkew: 5 * time.Second}}, // close, looser source, tighter time
		{ID: 2, Policy: Policy{BindSource: false, MaxSkew: time.Hour}},       // shadowed: the first id wins
		{ID: 3, Policy: Policy{BindSource: true, MaxSkew: 30 * time.Second}}, // another bound door
		{ID: 255, Policy: Policy{BindSource: true, MaxSkew: 30 * time.Second}} /* id 255 is an ordinary id */}

	other := k
	other[31] ^= 0x80

	tests := []struct {
		name     string
		c        [BlockSize]byte
		now      time.Time
		wantDoor int
		want     Reason
	}{
		{"door 1", s.Seal(t0, [4]byte{1}, src, 1), t0, 0, 0},
		{"door 2 unbound", s.Seal(t0, [4]byte{2}, netip.Addr{}, 2), t0, 1, 0},
		{"door 2 by its own skew", s.Seal(t0, [4]byte{3}, src, 2), t0.Add(10 * time.Second), 1, ReasonSkew},
		{"door 255", s.Seal(t0, [4]byte{4}, src, 255), t0, 4, 0},
		{"door 3 unbound", s.Seal(t0, [4]byte{5}, netip.Addr{}, 3), t0, 3, ReasonSource},
		{"unknown id", s.Seal(t0, [4]byte{6}, src, 4), t0, -1, ReasonDoor},
		// Door before source: an unknown id from another address says door.
		{"unknown id, another source", s.Seal(t0, [4]byte{7}, netip.MustParseAddr("192.0.2.9"), 0), t0, -1, ReasonDoor},
		// Key before door.
		{"wrong key", NewSealer(other).Seal(t0, [4]byte{8}, src, 1), t0, -1, ReasonKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, i, err := o.OpenDoors(tt.c, src, tt.now, doors)
			if i != tt.wantDoor {
				t.Errorf("door index %d, want %d", i, tt.wantDoor)
			}
			if tt.want == 0 && err != nil || tt.want != 0 && err != tt.want {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
	if _, i, err := o.OpenDoors(s.Seal(t0, [4]byte{}, src, 1), src, t0, nil); i != -1 || err != ReasonDoor {
		t.Errorf("OpenDoors with no doors = %d, %v; want -1, door", i, err)
	}
}

// TestSealNonceMatters checks that blocks made in the same second differ
// by their nonce, so the replay cache tells two honest knocks apart.
func TestSealNonceMatters(t *testing.T) {
	s := NewSealer(vectorKey())
	t0 := time.Unix(1767225600, 0)
	src := netip.MustParseAddr("192.0.2.1")
	a := s.Seal(t0, [4]byte{0, 0, 0, 1}, src, 0)
	b := s.Seal(t0, [4]byte{0, 0, 0, 2}, src, 0)
	if a == b {
		t.Fatal("two nonces gave the same ciphertext")
	}
	if s.Seal(t0.Add(999*time.Millisecond), [4]byte{0, 0, 0, 1}, src, 0) != a {
		t.Fatal("fractions of a second changed the ciphertext")
	}
}

// TestOpenAllocatesNothing holds the verify path to zero allocations, for
// the flood's common case (wrong key) and for accepted blocks.
func TestOpenAllocatesNothing(t *testing.T) {
	k := vectorKey()
	o := NewOpener(k)
	t0 := time.Unix(1767225600, 0)
	src := netip.MustParseAddr("2001:db8::1")
	valid := NewSealer(k).Seal(t0, [4]byte{1}, src, 1)
	p := Policy{BindSource: true, MaxSkew: time.Minute}
	doors := []Door{{ID: 1, Policy: p}}
	var junk [BlockSize]byte
	allocs := testing.AllocsPerRun(1000, func() {
		junk[0]++
		if _, err := o.Open(junk, src, t0, p); err == nil {
			t.Fatal("junk opened")
		}
		if _, err := o.Open(valid, src, t0, p); err != nil {
			t.Fatal(err)
		}
		if _, _, err := o.OpenDoors(valid, src, t0, doors); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Open allocates %v times per run, want 0", allocs)
	}
}
