package sealed

import (
	"math/rand/v2"
	"testing"
)

func TestCheckBase(t *testing.T) {
	for _, tt := range []struct {
		base int
		ok   bool
	}{
		{-1, false}, {0, false}, {1, true}, {20000, true}, {MaxBase, true}, {MaxBase + 1, false}, {65535, false}, {65536, false}, {1 << 20, false},
	} {
		if err := CheckBase(tt.base); (err == nil) != tt.ok {
			t.Errorf("CheckBase(%d) = %v, want ok=%v", tt.base, err, tt.ok)
		}
	}
	if MaxBase+Span-1 != 65535 {
		t.Fatalf("MaxBase %d: its span ends at %d, want 65535", MaxBase, MaxBase+Span-1)
	}
}

// TestPortsPositionRoundTrip checks the mapping both ways for every
// position and byte at the lowest and highest base and one between.
func TestPortsPositionRoundTrip(t *testing.T) {
	for _, base := range []uint16{1, 20000, MaxBase} {
		for b := range 256 {
			var c [BlockSize]byte
			for i := range c {
				c[i] = byte(b + 37*i) // every byte at every position over the loop
			}
			ports := Ports(base, c)
			for i, port := range ports {
				if want := int(base) + 256*i + int(c[i]); int(port) != want {
					t.Fatalf("base %d: Ports[%d] = %d, want %d", base, i, port, want)
				}
				gi, gb, ok := Position(base, port)
				if !ok || gi != i || gb != c[i] {
					t.Fatalf("base %d: Position(%d) = %d, %#x, %v; want %d, %#x, true", base, port, gi, gb, ok, i, c[i])
				}
			}
		}
	}
}

func TestPositionOutside(t *testing.T) {
	for _, tt := range []struct {
		base, port uint16
		ok         bool
	}{
		{20000, 19999, false},
		{20000, 20000, true},
		{20000, 20000 + Span - 1, true},
		{20000, 20000 + Span, false},
		{20000, 0, false},
		{1, 0, false},
		{1, 4096, true},
		{1, 4097, false},
		{MaxBase, 65535, true},
		{MaxBase, MaxBase - 1, false},
		{0, 0, false}, // base 0 is not a base
		{0, 100, false},
		{MaxBase + 1, 65535, false}, // nor one whose span wraps
		{65535, 65535, false},
	} {
		_, _, ok := Position(tt.base, tt.port)
		if ok != tt.ok {
			t.Errorf("Position(%d, %d) ok = %v, want %v", tt.base, tt.port, ok, tt.ok)
		}
	}
}

// TestPositionRandom compares Position with the arithmetic definition for
// random bases and ports.
func TestPositionRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		base, port := uint16(r.UintN(65536)), uint16(r.UintN(65536))
		i, b, ok := Position(base, port)
		off := int(port) - int(base)
		wantOK := base >= 1 && int(base) <= MaxBase && off >= 0 && off < Span
		if ok != wantOK || ok && (i != off/256 || int(b) != off%256) {
			t.Fatalf("Position(%d, %d) = %d, %d, %v", base, port, i, b, ok)
		}
	}
}

func TestPortsPanicsOnBadBase(t *testing.T) {
	for _, base := range []uint16{0, MaxBase + 1, 65535} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Ports(%d, …) did not panic", base)
				}
			}()
			Ports(base, [BlockSize]byte{})
		}()
	}
}
