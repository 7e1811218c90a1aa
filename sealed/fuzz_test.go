package sealed

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func FuzzParseKey(f *testing.F) {
	text, _ := vectorKey().MarshalText()
	for _, s := range []string{
		string(text), vectorKeyFile, "", "#", "\n\n", "#\r\n" + vectorKeyFile + "\r\n",
		vectorKeyFile + "\n" + vectorKeyFile, "====", "AAAA", "\x00\xff", " \t\v\f\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKey(data)
		if err != nil {
			if k != (Key{}) {
				t.Fatalf("ParseKey returned a key with error %v", err)
			}
			return
		}
		if k == (Key{}) {
			t.Fatal("ParseKey accepted an all-zero key")
		}
		text, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKey(text)
		if err != nil || back != k {
			t.Fatalf("MarshalText of a parsed key does not parse back: %v", err)
		}
	})
}

// addrFrom makes a source address from fuzz bytes: 4 or 16 bytes make an
// address, anything else none.
func addrFrom(b []byte) netip.Addr {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b))
	case 16:
		return netip.AddrFrom16([16]byte(b))
	}
	return netip.Addr{}
}

// FuzzOpen feeds arbitrary complete sets to the opener: it must not panic,
// must return only its reasons, and whatever it accepts must be exactly
// what the sealer makes from the decoded block.
func FuzzOpen(f *testing.F) {
	for _, v := range vectors {
		var src []byte
		if a := v.src(); a.IsValid() {
			src = a.Unmap().AsSlice()
		}
		c := v.cipherBytes(f)
		f.Add(c[:], src, v.source != "", v.time, int64(60))
		f.Add(c[:], src, false, v.time+3600, int64(60))
	}
	f.Add(make([]byte, 16), []byte{192, 0, 2, 1}, true, int64(0), int64(0))
	f.Add(bytes.Repeat([]byte{0xff}, 16), []byte(nil), false, int64(-1), int64(-1))
	k := vectorKey()
	o := NewOpener(k)
	s := NewSealer(k)
	f.Fuzz(func(t *testing.T, cb, srcb []byte, bind bool, now, skew int64) {
		if len(cb) != BlockSize {
			return
		}
		c := [BlockSize]byte(cb)
		src := addrFrom(srcb)
		p := Policy{BindSource: bind, MaxSkew: time.Duration(skew)}
		tnow := time.Unix(now, 0)
		b, err := o.Open(c, src, tnow, p)
		switch err {
		case nil:
			var sealFor netip.Addr
			if b.Bound() {
				sealFor = src
			}
			if again := s.Seal(time.Unix(int64(b.Time), 0), b.Nonce, sealFor, b.ID); again != c {
				t.Fatalf("accepted %x, but sealing its block %+v gives %x", c, b, again)
			}
			if bind && !b.Bound() {
				t.Fatal("an unbound block opened a binding door")
			}
			if d := b.Skew(tnow); d > p.MaxSkew || d < -p.MaxSkew {
				t.Fatalf("accepted with skew %v beyond %v", d, p.MaxSkew)
			}
		case ReasonKey:
			if b != (Block{}) {
				t.Fatalf("key rejection returned block %+v", b)
			}
		case ReasonSource, ReasonSkew:
			if again := b.Marshal(); !bytes.Equal(again[13:], []byte(Magic)) {
				t.Fatalf("rejected block %+v lost its magic", b)
			}
		default:
			t.Fatalf("Open returned %v", err)
		}
	})
}

// FuzzSealOpen seals arbitrary blocks with arbitrary keys, spells them as
// ports, reads the ports back in reverse order and opens: the round trip
// must give the block back.
func FuzzSealOpen(f *testing.F) {
	f.Add(make([]byte, 32), uint32(0), uint32(0), []byte{192, 0, 2, 1}, byte(0), uint16(1))
	f.Add(bytes.Repeat([]byte{0xff}, 32), uint32(1<<32-1), uint32(1<<32-1), []byte(nil), byte(255), uint16(MaxBase))
	f.Fuzz(func(t *testing.T, kb []byte, tm, nonce uint32, srcb []byte, id byte, base uint16) {
		if len(kb) != KeySize || CheckBase(int(base)) != nil {
			return
		}
		k := Key(kb)
		src := addrFrom(srcb)
		n := [4]byte{byte(nonce >> 24), byte(nonce >> 16), byte(nonce >> 8), byte(nonce)}
		at := time.Unix(int64(tm), 0)
		c := NewSealer(k).Seal(at, n, src, id)
		ports := Ports(base, c)
		var back [BlockSize]byte
		for j := Knocks - 1; j >= 0; j-- {
			i, by, ok := Position(base, ports[j])
			if !ok || i != j {
				t.Fatalf("Position(%d, %d) = %d, %v", base, ports[j], i, ok)
			}
			back[i] = by
		}
		b, err := NewOpener(k).Open(back, src, at, Policy{BindSource: src.IsValid()})
		if err != nil {
			t.Fatalf("Open of a fresh seal: %v", err)
		}
		if b.Time != tm || b.Nonce != n || b.ID != id || b.Bound() != src.IsValid() {
			t.Fatalf("Open = %+v, sealed time %d nonce %x id %d source %v", b, tm, n, id, src)
		}
	})
}

// FuzzUnmarshal checks the plain block decoder: it accepts exactly the
// blocks with the magic and gives them back unchanged.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(f, v.plain))
	}
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, pb []byte) {
		if len(pb) != BlockSize {
			return
		}
		p := [BlockSize]byte(pb)
		b, ok := Unmarshal(p)
		if ok != bytes.Equal(pb[13:], []byte(Magic)) {
			t.Fatalf("Unmarshal(%x) ok = %v", pb, ok)
		}
		if ok && b.Marshal() != p {
			t.Fatalf("Unmarshal(%x) = %+v, which marshals to %x", pb, b, b.Marshal())
		}
	})
}

// FuzzPosition checks the port decoder against its arithmetic definition
// and against Ports.
func FuzzPosition(f *testing.F) {
	f.Add(uint16(20000), uint16(20040))
	f.Add(uint16(0), uint16(0))
	f.Add(uint16(MaxBase), uint16(65535))
	f.Add(uint16(MaxBase+1), uint16(65535))
	f.Fuzz(func(t *testing.T, base, port uint16) {
		i, b, ok := Position(base, port)
		off := int(port) - int(base)
		if want := CheckBase(int(base)) == nil && off >= 0 && off < Span; ok != want {
			t.Fatalf("Position(%d, %d) ok = %v, want %v", base, port, ok, want)
		}
		if !ok {
			return
		}
		var c [BlockSize]byte
		c[i] = b
		if got := Ports(base, c)[i]; got != port {
			t.Fatalf("Position(%d, %d) = %d, %d; Ports puts that on %d", base, port, i, b, got)
		}
	})
}
