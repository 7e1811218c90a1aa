package sealed

import (
	"encoding/binary"
	"time"
)

// BlockSize is the size of a sealed block, plain or encrypted: one AES
// block.
const BlockSize = 16

// Magic ends every plain block: "PK" and the format version. A block
// decrypted with the wrong key, or from a corrupted or forged set of
// knocks, has these three bytes right with chance 2⁻²⁴.
const Magic = "PK\x01"

// Block is a sealed block in the clear. On the wire it is, big-endian:
//
//	bytes  0–3   Time, Unix seconds modulo 2³²
//	bytes  4–7   Nonce
//	bytes  8–11  Tag, the source tag (zero: not bound to a source)
//	byte   12    ID, the door id
//	bytes 13–15  Magic
type Block struct {
	// Time is when the block was made, in Unix seconds modulo 2³². It is
	// read as the instant nearest to the reader's clock (see Skew), so the
	// field wrapping in 2106 does no harm.
	Time uint32
	// Nonce makes blocks made in the same second differ, so that the
	// replay cache does not refuse a second honest knock.
	Nonce [4]byte
	// Tag binds the block to the client's source address: the first four
	// bytes of HMAC-SHA256(tag key, address). All zero when the client does
	// not bind; a door accepts that only with bind_source = false.
	Tag [4]byte
	// ID tells doors that share a base and key apart (e.g. open and close).
	ID byte
}

// Marshal returns the block's 16 plain bytes, magic included.
func (b Block) Marshal() [BlockSize]byte {
	var p [BlockSize]byte
	binary.BigEndian.PutUint32(p[0:4], b.Time)
	copy(p[4:8], b.Nonce[:])
	copy(p[8:12], b.Tag[:])
	p[12] = b.ID
	copy(p[13:16], Magic)
	return p
}

// Unmarshal reads a plain block. It reports false when the magic is wrong:
// the block was encrypted with another key, or is not a block at all.
func Unmarshal(p [BlockSize]byte) (Block, bool) {
	if string(p[13:16]) != Magic {
		return Block{}, false
	}
	var b Block
	b.Time = binary.BigEndian.Uint32(p[0:4])
	copy(b.Nonce[:], p[4:8])
	copy(b.Tag[:], p[8:12])
	b.ID = p[12]
	return b, true
}

// Bound reports whether the block carries a source tag.
func (b Block) Bound() bool { return b.Tag != [4]byte{} }

// Skew returns how far the block's time is from now, in whole seconds:
// positive when the sender's clock is ahead. The 32-bit time is taken as
// the instant nearest to now (serial number arithmetic), so the result
// lies within ±68 years and is exact for any sane clock.
func (b Block) Skew(now time.Time) time.Duration {
	d := int32(b.Time - uint32(now.Unix()))
	return time.Duration(d) * time.Second
}
