package nflog

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/mdlayher/netlink"
)

// Adaptive batching. With a queue threshold of one, the kernel sends each
// logged packet as a netlink datagram of its own: the lowest latency, but
// every datagram costs the reader two receive calls and their scheduling,
// far more than parsing the message. Under a flood the reader falls behind
// and the kernel drops. So a socket starts at a threshold of one and, while
// the message rate stays high, asks the kernel to gather up to BatchQueue
// messages per datagram, flushed at the latest after BatchTimeout; when the
// flood is over it goes back to one.
const (
	// DefaultBatchAbove is the message rate, per second and group, above
	// which a socket batches.
	DefaultBatchAbove = 20_000
	// DefaultBatchBelow is the rate below which a batching socket goes
	// back to a datagram per message, once it has stayed there for
	// batchHold.
	DefaultBatchBelow = 2_000
	// DefaultBatchQueue is the kernel's queue threshold while batching.
	DefaultBatchQueue = 64
	// DefaultBatchTimeout is the longest the kernel holds a message while
	// batching; it counts in hundredths of a second.
	DefaultBatchTimeout = 10 * time.Millisecond

	// batchWindow is how often a socket's message rate is measured.
	batchWindow = 100 * time.Millisecond
	// batchHold is how long the rate must stay below the lower threshold
	// before batching stops, so that a flood with pauses does not make
	// the socket switch back and forth.
	batchHold = time.Second
)

// batchSettings are an Input's batch settings with defaults applied.
type batchSettings struct {
	above, below int // 0: batching off
	queue        uint32
	timeout      time.Duration
}

// resolveBatch applies the defaults to an Input's batch settings and
// checks them.
func resolveBatch(above, below int, queue uint32, timeout time.Duration) (batchSettings, error) {
	b := batchSettings{above: above, below: below, queue: queue, timeout: timeout}
	if b.above < 0 {
		return batchSettings{}, nil
	}
	if b.above == 0 {
		b.above = DefaultBatchAbove
	}
	if b.below == 0 {
		b.below = DefaultBatchBelow
	}
	if b.queue == 0 {
		b.queue = DefaultBatchQueue
	}
	if b.timeout == 0 {
		b.timeout = DefaultBatchTimeout
	}
	switch {
	case b.below < 0 || b.below >= b.above:
		return batchSettings{}, fmt.Errorf("NFLOG batching: the rate to stop batching (%d/s) must be positive and below the rate to start (%d/s)", b.below, b.above)
	case b.queue > maxQueueThreshold:
		return batchSettings{}, fmt.Errorf("NFLOG batching: queue threshold %d is over %d", b.queue, maxQueueThreshold)
	case b.timeout < 0:
		return batchSettings{}, fmt.Errorf("NFLOG batching: negative timeout %v", b.timeout)
	}
	return b, nil
}

// batchSwitch decides from a socket's running message count when it
// should batch: at once when a window's rate passes above, and back only
// after the rate has stayed below below for hold. It does no I/O and reads
// no clock, so tests drive it with made-up times.
type batchSwitch struct {
	above, below float64 // messages per second
	hold         time.Duration

	batched    bool
	started    bool
	last       time.Time // the previous observation
	lastCount  uint64
	quietSince time.Time // start of the current run of quiet windows; zero if none
}

func newBatchSwitch(above, below int, hold time.Duration) *batchSwitch {
	return &batchSwitch{above: float64(above), below: float64(below), hold: hold}
}

// observe takes the time, the total of messages so far (received and
// known lost) and whether messages are waiting unread in the socket, and
// reports the rate since the previous observation and whether the socket
// must switch now; batched then says to what. The first observation only
// sets the origin.
//
// A window with messages waiting is never quiet, whatever its rate: a
// reader that could not run for a while (a busy machine) counts few
// messages while the flood goes on, and a datagram per message would then
// be the worst answer. Waiting messages do not start batching, though:
// one knock arriving at the moment of the observation would.
func (b *batchSwitch) observe(now time.Time, total uint64, waiting bool) (rate float64, change bool) {
	if !b.started {
		b.started, b.last, b.lastCount = true, now, total
		return 0, false
	}
	dt := now.Sub(b.last)
	if dt <= 0 {
		return 0, false
	}
	rate = float64(total-b.lastCount) / dt.Seconds()
	windowStart := b.last
	b.last, b.lastCount = now, total
	switch {
	case !b.batched:
		if rate > b.above {
			b.batched, b.quietSince = true, time.Time{}
			return rate, true
		}
	case rate >= b.below || waiting:
		b.quietSince = time.Time{}
	default:
		if b.quietSince.IsZero() {
			b.quietSince = windowStart
		}
		if now.Sub(b.quietSince) >= b.hold {
			b.batched, b.quietSince = false, time.Time{}
			return rate, true
		}
	}
	return rate, false
}

// Netlink constants from linux/netfilter/nfnetlink.h and nfnetlink_log.h.
const (
	nfnlSubsysULOG    = 4 // NFNL_SUBSYS_ULOG
	nfulnlMsgConfig   = 1 // NFULNL_MSG_CONFIG
	nfulaCfgNLBufSiz  = 3 // NFULA_CFG_NLBUFSIZ: u32, big-endian, bytes
	nfulaCfgTimeout   = 4 // NFULA_CFG_TIMEOUT: u32, big-endian, in 1/100 s
	nfulaCfgQThresh   = 5 // NFULA_CFG_QTHRESH: u32, big-endian, messages
	nfnetlinkV0       = 0 // NFNETLINK_V0
	nfgenFamilyUnspec = 0 // AF_UNSPEC
	nfgenmsgLen       = 4 // struct nfgenmsg

	// maxQueueThreshold bounds BatchQueue: the kernel also sends when its
	// buffer (at most 128 KiB) is full, so a larger one would gain nothing.
	maxQueueThreshold = 1024
	timeoutUnit       = 10 * time.Millisecond
	maxTimeoutUnits   = 100
	// singleTimeout is the flush timeout set when batching stops: the
	// kernel's default, which the socket had before. With a threshold of
	// one it holds nothing back; only a batch begun before the switch
	// waits for the timer the kernel started with the batch timeout.
	singleTimeout = time.Second

	// The kernel's buffer sizes: it refuses less than NLMSG_GOODSIZE (a
	// page or 8 KiB, less the socket buffer's overhead) and more than
	// 128 KiB. minBufSize is below any NLMSG_GOODSIZE, for the check.
	minBufSize = 2048
	maxBufSize = 128 << 10
	// bytesPerBatched is the buffer allowed per message while batching:
	// a logged TCP SYN takes about 170 bytes, and the kernel keeps room
	// for the largest message it could make before adding one. With its
	// default of about 4 KiB it would send batches of about 20.
	bytesPerBatched = 256
)

// batchBufSize is the buffer size while batching queue messages at most.
func batchBufSize(queue uint32) uint32 {
	return min(max(queue*bytesPerBatched, 16<<10), maxBufSize)
}

// singleBufSize is the buffer size to set when batching stops: the
// kernel's default can only be set again approximately, since it refuses
// anything below it, and it is just below min(page size, 8 KiB). The
// difference is a few hundred bytes, and with a message per datagram
// the kernel trims each buffer to its message before queueing it.
func singleBufSize() uint32 { return uint32(min(os.Getpagesize(), 8192)) }

// queueConfig is the NFULNL_MSG_CONFIG message that sets a bound group's
// queue threshold, flush timeout (rounded up to the kernel's 1/100 s) and
// buffer size: the size of the kernel's buffer in which it gathers
// messages before sending them as one datagram.
//
// It asks for no acknowledgement: an ACK would arrive on the socket among
// the log messages and reach the receive loop as one. A refusal still
// comes back, as an error message with this message's sequence number.
// A buffer size the kernel finds out of range is ignored without one.
func queueConfig(group uint16, qthresh uint32, timeout time.Duration, bufsize uint32) (netlink.Message, error) {
	if qthresh < 1 || qthresh > maxQueueThreshold {
		return netlink.Message{}, fmt.Errorf("queue threshold %d out of range 1-%d", qthresh, maxQueueThreshold)
	}
	if bufsize < minBufSize || bufsize > maxBufSize {
		return netlink.Message{}, fmt.Errorf("buffer size %d out of range %d-%d", bufsize, minBufSize, maxBufSize)
	}
	units := timeoutUnits(timeout)
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Uint32(nfulaCfgTimeout, units)
	ae.Uint32(nfulaCfgQThresh, qthresh)
	ae.Uint32(nfulaCfgNLBufSiz, bufsize)
	attrs, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, err
	}
	data := make([]byte, nfgenmsgLen, nfgenmsgLen+len(attrs))
	data[0], data[1] = nfgenFamilyUnspec, nfnetlinkV0
	binary.BigEndian.PutUint16(data[2:], group) // res_id: the group
	return netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(nfnlSubsysULOG<<8 | nfulnlMsgConfig),
			Flags: netlink.Request,
		},
		Data: append(data, attrs...),
	}, nil
}

// timeoutUnits converts a flush timeout to the kernel's hundredths of a
// second, rounding up so that a timeout is never shorter than asked, and
// at most a second.
func timeoutUnits(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(min((d+timeoutUnit-1)/timeoutUnit, maxTimeoutUnits))
}
