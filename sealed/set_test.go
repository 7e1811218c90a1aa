package sealed

import (
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	v := vectors[0]
	c := v.cipherBytes(t)
	var s Set
	// Out of order, with retransmits: a check is due only when the last
	// missing position arrives.
	order := []int{15, 3, 3, 0, 7, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 7}
	for n, i := range order {
		if s.Complete() != (n > 16) {
			t.Fatalf("before knock %d: Complete = %v", n, s.Complete())
		}
		due := s.Put(i, c[i])
		if want := n == 16; due != want {
			t.Fatalf("knock %d (position %d): due = %v, want %v", n, i, due, want)
		}
	}
	if !s.Complete() || s.Seen() != 0xffff || s.Ciphertext() != c {
		t.Fatalf("complete set: seen %#x, ciphertext %x; want %x", s.Seen(), s.Ciphertext(), c)
	}
	// A retransmit changes nothing: no new check.
	if s.Put(5, c[5]) {
		t.Error("a retransmitted knock made a check due")
	}
	// A new attempt overwrites: every changed byte makes a check due, and
	// the set opens once the whole new block is in.
	k := vectorKey()
	src := v.src()
	c2 := NewSealer(k).Seal(time.Unix(v.time+5, 0), [4]byte{9, 9, 9, 9}, src, v.id)
	o := NewOpener(k)
	opened := 0
	for i := range Knocks {
		if s.Put(i, c2[i]) {
			if c2[i] == c[i] {
				t.Errorf("position %d: an unchanged byte made a check due", i)
			}
			if _, err := o.Open(s.Ciphertext(), src, time.Unix(v.time+5, 0), Policy{BindSource: true, MaxSkew: time.Second}); err == nil {
				opened++
			}
		}
	}
	if opened != 1 || s.Ciphertext() != c2 {
		t.Fatalf("the new attempt opened %d times, want once", opened)
	}
}

func TestSetPanics(t *testing.T) {
	for _, i := range []int{-1, 16} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Put(%d) did not panic", i)
				}
			}()
			var s Set
			s.Put(i, 0)
		}()
	}
}
