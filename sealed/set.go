package sealed

// Set collects the knocks one source sends to one sealed range: a byte per
// position and which positions have been seen. The zero Set is empty.
type Set struct {
	c    [BlockSize]byte
	seen uint16
}

// Put records knock i carrying byte b; the last knock for a position wins,
// so a retry overwrites an earlier attempt. It reports whether the set is
// complete and something changed, that is, whether there is a new
// ciphertext to open: a retransmitted knock that changes nothing is not
// worth another check. It panics if i is not a position (0..15), which
// Position never returns.
func (s *Set) Put(i int, b byte) bool {
	if i < 0 || i >= Knocks {
		panic("sealed: knock position out of range")
	}
	bit := uint16(1) << i
	changed := s.seen&bit == 0 || s.c[i] != b
	s.c[i] = b
	s.seen |= bit
	return changed && s.seen == 1<<Knocks-1
}

// Complete reports whether every position has been seen.
func (s *Set) Complete() bool { return s.seen == 1<<Knocks-1 }

// Seen returns the positions seen so far, bit i for position i.
func (s *Set) Seen() uint16 { return s.seen }

// Ciphertext returns the bytes collected; positions not seen are zero.
func (s *Set) Ciphertext() [BlockSize]byte { return s.c }
