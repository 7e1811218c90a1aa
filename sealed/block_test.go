package sealed

import (
	"testing"
	"time"
)

func TestBlockMarshalLayout(t *testing.T) {
	b := Block{Time: 0x01020304, Nonce: [4]byte{5, 6, 7, 8}, Tag: [4]byte{9, 10, 11, 12}, ID: 13}
	want := [BlockSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 'P', 'K', 1}
	if got := b.Marshal(); got != want {
		t.Fatalf("Marshal = %x, want %x", got, want)
	}
	back, ok := Unmarshal(want)
	if !ok || back != b {
		t.Fatalf("Unmarshal = %+v, %v; want %+v, true", back, ok, b)
	}
}

func TestUnmarshalMagic(t *testing.T) {
	good := Block{ID: 3}.Marshal()
	for i := 13; i < 16; i++ {
		for bit := range 8 {
			p := good
			p[i] ^= 1 << bit
			if b, ok := Unmarshal(p); ok || b != (Block{}) {
				t.Errorf("Unmarshal accepted magic %x", p[13:])
			}
		}
	}
}

func TestSkew(t *testing.T) {
	now := time.Unix(1767225600, 999_000_000) // fractions of a second do not count
	for _, tt := range []struct {
		block uint32
		now   time.Time
		want  time.Duration
	}{
		{1767225600, now, 0},
		{1767225630, now, 30 * time.Second},
		{1767225570, now, -30 * time.Second},
		// The field wraps in 2106; a block made just after the wrap is
		// still two seconds ahead of a clock just before it.
		{1, time.Unix(1<<32-1, 0), 2 * time.Second},
		{1<<32 - 1, time.Unix(1<<32+1, 0), -2 * time.Second},
		// The farthest a block can be: 2³¹ s either way.
		{0, time.Unix(1<<31, 0), -(1 << 31) * time.Second},
		{0, time.Unix(1<<31+1, 0), (1<<31 - 1) * time.Second},
	} {
		if got := (Block{Time: tt.block}).Skew(tt.now); got != tt.want {
			t.Errorf("Block{Time: %d}.Skew(%d) = %v, want %v", tt.block, tt.now.Unix(), got, tt.want)
		}
	}
}
