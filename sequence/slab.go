package sequence

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"unsafe"

	"portknock/sealed"
)

// The table of tracked sources keeps everything an event needs for one
// source in one slab: the address, the attempt at every door and the
// collector of every sealed range, with the links of the lists that order
// them by expiry. A lookup reads one chunk of a compact index (about 7
// bytes a source) and then the slab itself: an event at a source touches
// the slab and nothing else of the source's, however many are tracked.
// The slab's shape depends on how many
// doors and ranges there are, which Go cannot say with a struct type: the
// slabs live in one []uint64 and their parts are read through typed
// pointers (no part holds a pointer, so the GC never scans the table).

// A track is a door with a sequence (tracks 0 … len(doors)-1) or a sealed
// range (the tracks after them): one timeout, one attempt per source.

// The two lists every track keeps of the sources' attempts.
const (
	// listAll holds every attempt in progress, in the order they started
	// and so of their deadlines, since time never runs backwards for the
	// matcher: Expire pops its heads.
	listAll = iota
	// listFirst holds the attempts of the sources that have made no
	// progress anywhere (advanced is 0), in the order they joined it:
	// evict takes its heads first. An attempt joins when it starts, or
	// when its source's last advanced attempt ends (a match, say) and the
	// source is back among those with first knocks only; ordering it by
	// that moment, not by its start, keeps the list a queue.
	listFirst
)

// link is the part every attempt shares: when it started and its places
// in the track's two lists (slabs, -1 at an end).
type link struct {
	start int64 // Event.Mono of the attempt's first knock
	next  [2]int32
	prev  [2]int32
}

// attempt is a source's attempt at one door. A zero step means idle.
type attempt struct {
	link
	gen  uint32 // door generation the attempt was made under
	step uint8  // knocks taken so far
}

// collector is a source's knocks in one sealed range.
type collector struct {
	link
	set sealed.Set
	// logged is set once a rejection of this attempt has been logged, so
	// that a source sending noise into the range costs one line per
	// seq_timeout, not one per knock.
	logged bool
}

func (c *collector) active() bool { return c.set.Seen() != 0 }

// knocks is how many positions the attempt has filled.
func (c *collector) knocks() int { return bits.OnesCount16(c.set.Seen()) }

// header is the head of a slab.
type header struct {
	key      [16]byte // the address, As16
	active   uint16   // tracks with an attempt in progress
	advanced uint16   // of those, attempts past their first knock
	// busy has bit tr set while track tr < 64 has an attempt in progress,
	// so that an event passes an idle door without reading its attempt,
	// which may lie in another cache line.
	busy uint64
}

// idle reports whether the source surely has no attempt at track tr.
func (h *header) idle(tr int) bool { return tr < 64 && h.busy&(1<<tr) == 0 }

// maxTracks bounds doors plus sealed ranges, so that a header's counters
// fit in 16 bits.
const maxTracks = 1<<16 - 1

// The size of each part of a slab, in uint64 words.
const (
	headerWords    = int((unsafe.Sizeof(header{}) + 7) / 8)
	attemptWords   = int((unsafe.Sizeof(attempt{}) + 7) / 8)
	collectorWords = int((unsafe.Sizeof(collector{}) + 7) / 8)
)

// The index: hash → slab, in chunks of chunkSlots entries, each chunk led
// by one control word holding a tag byte per entry (0 when empty, else
// 0x80 and seven bits of the hash) and, in its top byte, how many keys
// whose home chunk comes earlier were placed past it. A lookup stops at the
// first chunk that nothing overflowed, and removing a key only clears its
// tag and counts the overflows back down. The index is small (a chunk is
// 32 bytes, so never split across cache lines, for six entries) and can
// stay in cache; the slabs it points to live in one arena, numbered in the
// order they were first needed and never moved while tracked, so that the
// lists' links stay valid when the index grows.
const (
	chunkSlots = 6
	ctrlLSB    = 0x0000010101010101
	ctrlMSB    = 0x0000808080808080
	ctrlOver   = 56 // shift of the overflow count; byte 6 is unused
	// At most loadNum/loadDen of the index's entries are used.
	loadNum, loadDen = 4, 5
)

type chunk struct {
	ctrl uint64
	slab [chunkSlots]int32
}

// table holds the slabs and their index. Slab 0 is always zero: Handle
// reads an untracked source's idle attempts from it.
type table struct {
	chunks  []chunk
	nchunks uint64
	limit   int // most keys before the index must grow
	count   int // sources tracked
	max     int // most sources ever tracked at once
	seed    [4]uint64

	words  []uint64 // the slabs, stride words each
	stride int
	off    []int // word offset of each track in a slab
	nd     int   // doors per slab; door d is at headerWords + d*attemptWords
	nslabs int   // slabs handed out so far, slab 0 included
	free   []int32
}

// newTable makes a table with room for n sources to start with and at most
// max, with nd doors and nr ranges per slab.
func newTable(n, max, nd, nr int) *table {
	t := &table{max: max}
	t.nd = nd
	t.off = make([]int, nd+nr)
	o := headerWords
	for i := range nd {
		t.off[i] = o
		o += attemptWords
	}
	for i := range nr {
		t.off[nd+i] = o
		o += collectorWords
	}
	// A slab that is a whole number of cache lines never straddles one
	// more than it must; the padding is worth it when it costs little.
	if pad := (o + 7) &^ 7; (pad-o)*8 <= o {
		o = pad
	}
	t.stride = o
	t.words = make([]uint64, (n+1)*t.stride)
	t.nslabs = 1
	t.makeIndex(n)
	for i := range t.seed {
		t.seed[i] = rand.Uint64()
	}
	return t
}

// makeIndex makes an empty index for n keys.
func (t *table) makeIndex(n int) {
	entries := (int64(n)*loadDen + loadNum - 1) / loadNum
	nchunks := max(int((entries+chunkSlots-1)/chunkSlots), 1)
	t.chunks = make([]chunk, nchunks)
	t.nchunks = uint64(nchunks)
	t.limit = nchunks * chunkSlots * loadNum / loadDen
}

// zero is the always-zero slab.
func (t *table) zero() int32 { return 0 }

// slab returns slab s. The index is checked; the offsets of the parts
// within it are right by construction (see newTable), so the accessors
// below add them unchecked.
func (t *table) slab(s int32) unsafe.Pointer {
	return unsafe.Pointer(&t.words[int(s)*t.stride])
}

func (t *table) hdr(s int32) *header { return (*header)(t.slab(s)) }

// att returns slab s's attempt at door d < t.nd.
func (t *table) att(s int32, d int) *attempt {
	return (*attempt)(unsafe.Add(t.slab(s), 8*(headerWords+d*attemptWords)))
}

// col returns slab s's collector at track tr, a range.
func (t *table) col(s int32, tr int) *collector {
	return (*collector)(unsafe.Add(t.slab(s), 8*t.off[tr]))
}

// link returns the part of slab s's attempt at track tr that orders it.
func (t *table) link(s int32, tr int) *link {
	if tr < t.nd {
		return &t.att(s, tr).link
	}
	return (*link)(unsafe.Add(t.slab(s), 8*t.off[tr]))
}

// hash mixes the key with the table's random seed, so that a sender who
// picks its addresses cannot pile them into one chunk.
func (t *table) hash(key *[16]byte) uint64 {
	a := binary.LittleEndian.Uint64(key[:8]) ^ t.seed[0]
	b := binary.LittleEndian.Uint64(key[8:]) ^ t.seed[1]
	hi, lo := bits.Mul64(a, b)
	hi, lo = bits.Mul64(hi^lo^t.seed[2], t.seed[3]|1)
	return hi ^ lo
}

func (t *table) home(h uint64) uint64 {
	c, _ := bits.Mul64(h, t.nchunks)
	return c
}

func tagOf(h uint64) uint64 { return uint64(byte(h) | 0x80) }

// matches returns a bit (the top one of its byte) for each entry of a
// chunk whose tag is tag, and perhaps a few more: callers compare keys.
func matches(w, tag uint64) uint64 {
	x := w ^ tag*ctrlLSB
	return (x - ctrlLSB) &^ x & ctrlMSB
}

// lookup returns key's slab, or -1.
func (t *table) lookup(key *[16]byte) int32 {
	h := t.hash(key)
	tag := tagOf(h)
	c := t.home(h)
	for range t.nchunks {
		ch := &t.chunks[c]
		for m := matches(ch.ctrl, tag); m != 0; m &= m - 1 {
			s := ch.slab[bits.TrailingZeros64(m)>>3]
			if t.hdr(s).key == *key {
				return s
			}
		}
		if ch.ctrl>>ctrlOver == 0 {
			break
		}
		if c++; c == t.nchunks {
			c = 0
		}
	}
	return -1
}

// insert tracks key, which must be absent and fewer than max tracked, and
// returns its slab, zero but for the key: an idle source.
func (t *table) insert(key *[16]byte) int32 {
	if t.count >= t.limit {
		t.growIndex()
	}
	var s int32
	if n := len(t.free); n > 0 {
		s, t.free = t.free[n-1], t.free[:n-1]
	} else {
		if (t.nslabs+1)*t.stride > len(t.words) {
			n := min(2*t.nslabs, t.max+1)
			t.words = append(t.words, make([]uint64, n*t.stride-len(t.words))...)
		}
		s = int32(t.nslabs)
		t.nslabs++
	}
	clear(t.words[int(s)*t.stride : int(s+1)*t.stride])
	t.hdr(s).key = *key
	t.place(key, s)
	t.count++
	return s
}

// place enters key → s in the index.
func (t *table) place(key *[16]byte, s int32) {
	h := t.hash(key)
	tag := tagOf(h)
	c := t.home(h)
	for {
		ch := &t.chunks[c]
		if e := ^ch.ctrl & ctrlMSB; e != 0 {
			i := bits.TrailingZeros64(e) >> 3
			ch.ctrl |= tag << (8 * i)
			ch.slab[i] = s
			return
		}
		if ch.ctrl>>ctrlOver < 0xff {
			ch.ctrl += 1 << ctrlOver
		}
		if c++; c == t.nchunks {
			c = 0
		}
	}
}

// growIndex doubles the index, up to what max sources need.
func (t *table) growIndex() {
	old := t.chunks
	t.makeIndex(min(max(2*t.limit, 64), t.max))
	for i := range old {
		for m := old[i].ctrl & ctrlMSB; m != 0; m &= m - 1 {
			s := old[i].slab[bits.TrailingZeros64(m)>>3]
			t.place(&t.hdr(s).key, s)
		}
	}
}

// remove stops tracking the source of slab s.
func (t *table) remove(s int32) {
	h := t.hash(&t.hdr(s).key)
	tag := tagOf(h)
	c := t.home(h)
	for {
		ch := &t.chunks[c]
		for m := matches(ch.ctrl, tag); m != 0; m &= m - 1 {
			if i := bits.TrailingZeros64(m) >> 3; ch.slab[i] == s {
				ch.ctrl &^= 0xff << (8 * i)
				t.free = append(t.free, s)
				t.count--
				return
			}
		}
		if w := ch.ctrl; w>>ctrlOver < 0xff {
			ch.ctrl = w - 1<<ctrlOver
		}
		if c++; c == t.nchunks {
			c = 0
		}
	}
}

// used calls f for every slab in use.
func (t *table) used(f func(s int32)) {
	for i := range t.chunks {
		for m := t.chunks[i].ctrl & ctrlMSB; m != 0; m &= m - 1 {
			f(t.chunks[i].slab[bits.TrailingZeros64(m)>>3])
		}
	}
}

// ends are the first and last slabs of a list, -1 when it is empty.
type ends struct{ head, tail int32 }

// push appends slab s, whose link at track tr is k, to the track's list l.
func (m *Matcher) push(l, tr int, s int32, k *link) {
	e := &m.lists[l][tr]
	k.next[l], k.prev[l] = -1, e.tail
	if e.tail >= 0 {
		m.tb.link(e.tail, tr).next[l] = s
	} else {
		e.head = s
	}
	e.tail = s
}

// unlink takes the attempt whose link is k out of track tr's list l.
func (m *Matcher) unlink(l, tr int, k *link) {
	e := &m.lists[l][tr]
	p, n := k.prev[l], k.next[l]
	if p >= 0 {
		m.tb.link(p, tr).next[l] = n
	} else {
		e.head = n
	}
	if n >= 0 {
		m.tb.link(n, tr).prev[l] = p
	} else {
		e.tail = p
	}
}

// timeout returns track tr's seq_timeout.
func (m *Matcher) timeout(tr int) int64 {
	if tr < len(m.doors) {
		return m.doors[tr].timeout
	}
	return m.ranges[tr-len(m.doors)].timeout
}

// started records that source s began an attempt at track tr, whose
// link is k, at now.
func (m *Matcher) started(s int32, tr int, k *link, now int64) {
	k.start = now
	m.push(listAll, tr, s, k)
	h := m.tb.hdr(s)
	h.active++
	if tr < 64 {
		h.busy |= 1 << tr
	}
	if h.advanced == 0 {
		m.push(listFirst, tr, s, k)
	}
}

// advanced records that one of source s's attempts went past its first
// knock: the source leaves the eviction order of those that made no
// progress.
func (m *Matcher) advanced(s int32) {
	h := m.tb.hdr(s)
	if h.advanced == 0 {
		for tr := range m.tb.off {
			if m.activeAt(s, tr) {
				m.unlink(listFirst, tr, m.tb.link(s, tr))
			}
		}
	}
	h.advanced++
}

// ended records that source s's attempt at track tr, whose link is k,
// is over; past says whether it had gone past its first knock. The caller
// then clears the attempt, and calls settle when done with the source.
func (m *Matcher) ended(s int32, tr int, k *link, past bool) {
	m.unlink(listAll, tr, k)
	h := m.tb.hdr(s)
	h.active--
	if tr < 64 {
		h.busy &^= 1 << tr
	}
	if !past {
		if h.advanced == 0 {
			m.unlink(listFirst, tr, k)
		}
		return
	}
	if h.advanced--; h.advanced == 0 && h.active > 0 {
		// Back among the sources with first knocks only.
		for u := range m.tb.off {
			if u != tr && m.activeAt(s, u) {
				m.push(listFirst, u, s, m.tb.link(s, u))
			}
		}
	}
}

func (m *Matcher) activeAt(s int32, tr int) bool {
	if tr < len(m.doors) {
		return m.tb.att(s, tr).step > 0
	}
	return m.tb.col(s, tr).active()
}

// settle stops tracking source s if it has no attempt left.
func (m *Matcher) settle(s int32) {
	if m.tb.hdr(s).active == 0 {
		m.tb.remove(s)
	}
}

// pastFirst reports whether source s's attempt at track tr has gone past
// its first knock.
func (m *Matcher) pastFirst(s int32, tr int) bool {
	if tr < len(m.doors) {
		return m.tb.att(s, tr).step > 1
	}
	return m.tb.col(s, tr).knocks() > 1
}

// rebuild moves every tracked source into a new table for at least n
// sources, with nd doors and nr ranges; keep maps each new track to the
// old one whose attempts it takes over, or -1. Sources left with no
// attempt are dropped. Both lists are rebuilt in the order the attempts
// started.
func (m *Matcher) rebuild(n, nd, nr int, keep []int) {
	old, oldLists := m.tb, m.lists
	nt := newTable(n, old.max, nd, nr)
	remap := make([]int32, old.nslabs)
	old.used(func(s int32) {
		remap[s] = -1
		oh := old.hdr(s)
		var active, adv uint16
		for tr, j := range keep {
			if j < 0 {
				continue
			}
			if tr < nd {
				if p := old.att(s, j); p.step > 0 {
					active++
					if p.step > 1 {
						adv++
					}
				}
			} else if c := old.col(s, j); c.active() {
				active++
				if c.knocks() > 1 {
					adv++
				}
			}
		}
		if active == 0 {
			return
		}
		ns := nt.insert(&oh.key)
		remap[s] = ns
		h := nt.hdr(ns)
		h.active, h.advanced = active, adv
		for tr, j := range keep {
			if j < 0 {
				continue
			}
			var busy bool
			if tr < nd {
				p := nt.att(ns, tr)
				*p = *old.att(s, j)
				busy = p.step > 0
			} else {
				c := nt.col(ns, tr)
				*c = *old.col(s, j)
				busy = c.active()
			}
			if busy && tr < 64 {
				h.busy |= 1 << tr
			}
		}
	})
	m.tb = nt
	for l := range m.lists {
		m.lists[l] = make([]ends, nd+nr)
		for tr := range m.lists[l] {
			m.lists[l][tr] = ends{-1, -1}
		}
	}
	for tr, j := range keep {
		if j < 0 {
			continue
		}
		for s := oldLists[listAll][j].head; s >= 0; s = old.link(s, j).next[listAll] {
			ns := remap[s]
			k := nt.link(ns, tr)
			m.push(listAll, tr, ns, k)
			if nt.hdr(ns).advanced == 0 {
				m.push(listFirst, tr, ns, k)
			}
		}
	}
}
