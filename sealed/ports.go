package sealed

import "fmt"

// Knocks is the number of knocks in a sealed set: one per ciphertext byte.
const Knocks = BlockSize

// Span is the number of ports a sealed door owns: base .. base+Span-1,
// 256 for each knock position.
const Span = Knocks * 256

// MaxBase is the highest base whose span still fits below port 65536.
const MaxBase = 65536 - Span

// CheckBase reports whether base can start a sealed door's port range: a
// port, not 0, with its whole span at or below 65535. It takes an int so
// that configuration values are checked before they are narrowed.
func CheckBase(base int) error {
	if base < 1 || base > MaxBase {
		return fmt.Errorf("sealed: base port %d out of range: the door owns base..base+%d, so base must be 1..%d", base, Span-1, MaxBase)
	}
	return nil
}

// Ports spells ciphertext c as knocks: knock i goes to base + 256·i + c[i].
// It panics when CheckBase(base) fails, as the ports would wrap around.
func Ports(base uint16, c [BlockSize]byte) [Knocks]uint16 {
	if err := CheckBase(int(base)); err != nil {
		panic(err)
	}
	var p [Knocks]uint16
	for i, b := range c {
		p[i] = base + uint16(i)<<8 + uint16(b)
	}
	return p
}

// Position reads one knock: which position i of the set the port stands
// for and the ciphertext byte b it carries. ok is false when the port lies
// outside the door's range or base is not a valid base.
func Position(base, port uint16) (i int, b byte, ok bool) {
	if base < 1 || base > MaxBase || port < base || port-base >= Span {
		return 0, 0, false
	}
	off := port - base
	return int(off >> 8), byte(off), true
}
