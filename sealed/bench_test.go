package sealed

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkOpen times the daemon's check of one complete set: "junk" is
// what a flood or a sweep makes (rejected at the magic, the common case),
// "valid" a real knock (AES, HMAC for the source tag, time), "doors" the
// same through OpenDoors with two doors sharing the base.
func BenchmarkOpen(b *testing.B) {
	k := vectorKey()
	t0 := time.Unix(1767225600, 0)
	src := netip.MustParseAddr("2001:db8::1")
	p := Policy{BindSource: true, MaxSkew: time.Minute}
	valid := NewSealer(k).Seal(t0, [4]byte{1}, src, 2)

	b.Run("junk", func(b *testing.B) {
		o := NewOpener(k)
		var c [BlockSize]byte
		b.ReportAllocs()
		for b.Loop() {
			c[0]++
			if _, err := o.Open(c, src, t0, p); err != ReasonKey {
				b.Fatal(err)
			}
		}
	})
	b.Run("valid", func(b *testing.B) {
		o := NewOpener(k)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := o.Open(valid, src, t0, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("doors", func(b *testing.B) {
		o := NewOpener(k)
		doors := []Door{{ID: 1, Policy: p}, {ID: 2, Policy: p}}
		b.ReportAllocs()
		for b.Loop() {
			if _, i, err := o.OpenDoors(valid, src, t0, doors); err != nil || i != 1 {
				b.Fatal(i, err)
			}
		}
	})
}

// BenchmarkSeal times the client's work for one set (once per knock run).
func BenchmarkSeal(b *testing.B) {
	s := NewSealer(vectorKey())
	t0 := time.Unix(1767225600, 0)
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		s.Seal(t0, [4]byte{1}, src, 0)
	}
}

// BenchmarkNewOpener times key derivation and setup, paid once per door
// key when the daemon loads its configuration.
func BenchmarkNewOpener(b *testing.B) {
	k := vectorKey()
	b.ReportAllocs()
	for b.Loop() {
		NewOpener(k)
	}
}
