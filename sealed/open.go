package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"hash"
	"net/netip"
	"strconv"
	"time"
)

// Reason says why a complete set of knocks did not open a door. Every
// rejection is one of these, so that logs and metrics name it the same
// way. A Reason is an error; boxing it allocates nothing.
type Reason uint8

// The reasons, in the order the daemon checks them.
const (
	// ReasonKey: the magic is wrong, so no valid block was sent with this
	// key: a wrong key, a lost or foreign knock, or noise.
	ReasonKey Reason = iota + 1
	// ReasonDoor: a valid block whose door id no door here has.
	ReasonDoor
	// ReasonSource: the block was made for another source address (a NAT
	// between client and daemon; the client's --source fixes it), or is
	// unbound where the door binds.
	ReasonSource
	// ReasonSkew: the block's time is more than max_skew from the daemon's
	// clock (Block.Skew says by how much).
	ReasonSkew
	// ReasonReplay: the very same block was accepted before. The daemon's
	// replay cache decides this; Open never returns it.
	ReasonReplay
)

// String returns the reason's name as logs and metrics spell it: key,
// door, source, skew or replay.
func (r Reason) String() string {
	switch r {
	case ReasonKey:
		return "key"
	case ReasonDoor:
		return "door"
	case ReasonSource:
		return "source"
	case ReasonSkew:
		return "skew"
	case ReasonReplay:
		return "replay"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Error describes the rejection for a person.
func (r Reason) Error() string {
	switch r {
	case ReasonKey:
		return "sealed knock rejected: no valid block (wrong key, or lost or corrupted knocks)"
	case ReasonDoor:
		return "sealed knock rejected: no door has the block's id"
	case ReasonSource:
		return "sealed knock rejected: block made for another source address (NAT? the client's --source sets it)"
	case ReasonSkew:
		return "sealed knock rejected: block time too far from this clock"
	case ReasonReplay:
		return "sealed knock rejected: block already used"
	}
	return "sealed knock rejected: " + r.String()
}

// Policy is what a door asks of a valid block besides its id.
type Policy struct {
	// BindSource refuses blocks without a source tag. A block with a tag is
	// always checked against the sender's address, whatever BindSource
	// says: a tag made for another address is a rejection, not a wildcard.
	BindSource bool
	// MaxSkew bounds |block time − now|. The replay cache must keep an
	// accepted block for 2·MaxSkew (see docs/sealed.md).
	MaxSkew time.Duration
}

// Door is one door among those sharing a base and a key, for OpenDoors.
type Door struct {
	ID byte
	Policy
}

// tagOf computes the source tag of src with mac, a reset HMAC keyed with
// the tag key, using addr and sum as scratch so that nothing escapes.
func tagOf(mac hash.Hash, src netip.Addr, addr *[16]byte, sum *[sha256.Size]byte) [4]byte {
	src = src.Unmap()
	var in []byte
	if src.Is4() {
		a := src.As4()
		in = append(addr[:0], a[:]...)
	} else {
		*addr = src.As16()
		in = addr[:]
	}
	mac.Reset()
	mac.Write(in)
	s := mac.Sum(sum[:0])
	return [4]byte(s[:4])
}

// Sealer makes sealed blocks for a client. It is safe for concurrent use.
type Sealer struct {
	block  cipher.Block
	tagKey [32]byte
}

// NewSealer prepares k for sealing.
func NewSealer(k Key) *Sealer {
	aesKey, tagKey := k.subKeys()
	return &Sealer{block: newAES(aesKey), tagKey: tagKey}
}

func newAES(key [32]byte) cipher.Block {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		// Only a wrong key length makes NewCipher fail.
		panic("sealed: aes: " + err.Error())
	}
	return b
}

// Tag returns src's source tag. src must be valid; IPv4-mapped IPv6
// addresses count as IPv4 and zones are ignored.
func (s *Sealer) Tag(src netip.Addr) [4]byte {
	var addr [16]byte
	var sum [sha256.Size]byte
	return tagOf(hmac.New(sha256.New, s.tagKey[:]), src, &addr, &sum)
}

// Seal makes the ciphertext of the block for door id, time t (Unix seconds
// modulo 2³²), nonce and source src. An invalid src makes an unbound block
// (tag zero), which only doors with bind_source = false accept. The nonce
// must be random: two blocks with the same second, nonce and source are
// the same block, and the replay cache lets only the first one in.
func (s *Sealer) Seal(t time.Time, nonce [4]byte, src netip.Addr, id byte) [BlockSize]byte {
	b := Block{Time: uint32(t.Unix()), Nonce: nonce, ID: id}
	if src.IsValid() {
		b.Tag = s.Tag(src)
	}
	p := b.Marshal()
	var c [BlockSize]byte
	s.block.Encrypt(c[:], p[:])
	return c
}

// Opener checks complete sets of knocks for a daemon. Its methods allocate
// nothing, as they run for every complete set a flood of knocks makes; for
// that it keeps scratch space, so an Opener is not safe for concurrent
// use: make one per goroutine.
type Opener struct {
	block   cipher.Block
	mac     hash.Hash
	in, out [BlockSize]byte
	addr    [16]byte
	sum     [sha256.Size]byte
}

// NewOpener prepares k for opening.
func NewOpener(k Key) *Opener {
	aesKey, tagKey := k.subKeys()
	o := &Opener{block: newAES(aesKey), mac: hmac.New(sha256.New, tagKey[:])}
	// hmac saves its keyed state on the first Reset, which allocates; do
	// it now rather than on the first valid knock.
	o.mac.Reset()
	return o
}

func (o *Opener) tag(src netip.Addr) [4]byte {
	return tagOf(o.mac, src, &o.addr, &o.sum)
}

// Decrypt decrypts c and checks its magic. The only error is ReasonKey.
func (o *Opener) Decrypt(c [BlockSize]byte) (Block, error) {
	o.in = c
	o.block.Decrypt(o.out[:], o.in[:])
	b, ok := Unmarshal(o.out)
	if !ok {
		return Block{}, ReasonKey
	}
	return b, nil
}

// Check judges a valid block sent from src at now by a door's policy:
// ReasonSource when its tag is neither src's nor (where the door allows)
// zero, ReasonSkew when its time is more than p.MaxSkew from now. It does
// not look at the door id.
func (o *Opener) Check(b Block, src netip.Addr, now time.Time, p Policy) error {
	if b.Bound() || p.BindSource {
		if !src.IsValid() {
			return ReasonSource
		}
		t := o.tag(src)
		if subtle.ConstantTimeCompare(t[:], b.Tag[:]) != 1 {
			return ReasonSource
		}
	}
	skew := b.Skew(now)
	if skew < -p.MaxSkew || skew > p.MaxSkew {
		return ReasonSkew
	}
	return nil
}

// Open decrypts c, sent from src, and judges it by p: Decrypt, then Check.
// It returns the block whenever it decrypts, even when rejected, so that a
// caller can log its id or skew. The door id is the caller's to judge (see
// OpenDoors); the replay cache too.
func (o *Opener) Open(c [BlockSize]byte, src netip.Addr, now time.Time, p Policy) (Block, error) {
	b, err := o.Decrypt(c)
	if err != nil {
		return b, err
	}
	return b, o.Check(b, src, now, p)
}

// OpenDoors opens c, sent from src, for the doors that share its base and
// key, checking in the daemon's order: key, door, source, skew. It returns
// the block whenever it decrypts and the index in doors of the door whose
// id it carries, or -1. When several doors have the id, the first wins.
// Only the replay check is left to the caller.
func (o *Opener) OpenDoors(c [BlockSize]byte, src netip.Addr, now time.Time, doors []Door) (Block, int, error) {
	b, err := o.Decrypt(c)
	if err != nil {
		return b, -1, err
	}
	for i := range doors {
		if doors[i].ID == b.ID {
			return b, i, o.Check(b, src, now, doors[i].Policy)
		}
	}
	return b, -1, ReasonDoor
}
