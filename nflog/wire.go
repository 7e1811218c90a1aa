package nflog

import (
	"encoding/binary"
	"errors"

	"github.com/mdlayher/netlink"
)

// The netlink wire format of NFLOG, decoded by hand. go-nflog's decoder
// builds a slice of every attribute and allocates each field it sets,
// about a dozen allocations per logged packet; under a flood that and
// the garbage collection it brings were over a third of the daemon's CPU.
// The daemon needs five attributes, so these functions read only those,
// in place, from the receive buffer: no allocation per message.
//
// A netlink datagram holds messages, each a header (struct nlmsghdr, host
// byte order) and a body. A log message's body is struct nfgenmsg and then
// attributes (struct nlattr, host byte order, each padded to 4 bytes),
// whose values netfilter writes in network byte order.

// Netlink and NFLOG constants from linux/netlink.h, nfnetlink_log.h.
const (
	nlmsgHdrLen   = 16 // struct nlmsghdr
	nlattrHdrLen  = 4  // struct nlattr
	nlmsgNoop     = 1  // NLMSG_NOOP
	nlmsgError    = 2  // NLMSG_ERROR
	nlmsgDone     = 3  // NLMSG_DONE
	nlmsgOverrun  = 4  // NLMSG_OVERRUN
	nlaTypeMask   = 0x3fff
	nfulnlMsgPkt  = 0 // NFULNL_MSG_PACKET
	nfulaPktHdr   = 1 // NFULA_PACKET_HDR: be16 hw_protocol, u8 hook, u8 pad
	nfulaTime     = 3 // NFULA_TIMESTAMP: be64 sec, be64 usec
	nfulaPayload  = 9 // NFULA_PAYLOAD: the packet from its network header
	nfulaPrefix   = 10
	nfulaSeq      = 12 // NFULA_SEQ: be32, per instance
	nfulaCfgCmd   = 1  // NFULA_CFG_CMD: u8 command
	nfulaCfgMode  = 2  // NFULA_CFG_MODE: be32 copy_range, u8 copy_mode, u8 pad
	nfulaCfgFlags = 6  // NFULA_CFG_FLAGS: be16
	nfulnlCmdBind = 1  // NFULNL_CFG_CMD_BIND
	nfulnlCopyPkt = 2  // NFULNL_COPY_PACKET
	nfulnlFlagSeq = 1  // NFULNL_CFG_F_SEQ
)

var (
	errShortMessage = errors.New("netlink message shorter than its header or than its length says")
	errShortAttr    = errors.New("netlink attribute shorter than its header or than its length says")
)

// logMsg is what the daemon uses of one NFULNL_MSG_PACKET message. The
// slices point into the buffer the message was decoded from. A field is
// valid only when its has flag is set: the kernel leaves out what it does
// not have (no prefix, no timestamp, no sequence numbers unless asked).
type logMsg struct {
	hook                  uint8
	seq                   uint32
	sec, usec             int64
	prefix, payload       []byte
	hasHook, hasSeq       bool
	hasTime               bool
	hasPrefix, hasPayload bool
}

// nlMessage is one netlink message's header fields and body.
type nlMessage struct {
	typ, flags uint16
	seq        uint32
	body       []byte
}

// nextMessage splits the first netlink message off b, returning it and
// the rest of b (empty after the last one).
func nextMessage(b []byte) (nlMessage, []byte, error) {
	if len(b) < nlmsgHdrLen {
		return nlMessage{}, nil, errShortMessage
	}
	n := int(binary.NativeEndian.Uint32(b[0:4]))
	if n < nlmsgHdrLen || n > len(b) {
		return nlMessage{}, nil, errShortMessage
	}
	m := nlMessage{
		typ:   binary.NativeEndian.Uint16(b[4:6]),
		flags: binary.NativeEndian.Uint16(b[6:8]),
		seq:   binary.NativeEndian.Uint32(b[8:12]),
		body:  b[nlmsgHdrLen:n],
	}
	// Messages are aligned to 4 bytes; the last one's padding may be
	// missing.
	n = align4(n)
	if n > len(b) {
		n = len(b)
	}
	return m, b[n:], nil
}

// errorCode is the error number an NLMSG_ERROR message carries (0 for an
// acknowledgement) and the sequence number of the message it answers.
func errorCode(body []byte) (errno int32, seq uint32, err error) {
	// int error, then the header of the message it answers.
	if len(body) < 4+nlmsgHdrLen {
		return 0, 0, errShortMessage
	}
	return int32(binary.NativeEndian.Uint32(body[0:4])), binary.NativeEndian.Uint32(body[4+8 : 4+12]), nil
}

// decodeLog decodes the body of an NFULNL_MSG_PACKET message into m,
// which it resets first. Attributes the daemon does not use are skipped;
// one of the used ones too short for its value is an error.
func decodeLog(body []byte, m *logMsg) error {
	*m = logMsg{}
	if len(body) < nfgenmsgLen {
		return errShortMessage
	}
	b := body[nfgenmsgLen:]
	for len(b) > 0 {
		if len(b) < nlattrHdrLen {
			return errShortAttr
		}
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		if n < nlattrHdrLen || n > len(b) {
			return errShortAttr
		}
		v := b[nlattrHdrLen:n]
		switch binary.NativeEndian.Uint16(b[2:4]) & nlaTypeMask {
		case nfulaPktHdr:
			if len(v) < 4 {
				return errShortAttr
			}
			m.hook, m.hasHook = v[2], true
		case nfulaTime:
			if len(v) < 16 {
				return errShortAttr
			}
			m.sec = int64(binary.BigEndian.Uint64(v[0:8]))
			m.usec = int64(binary.BigEndian.Uint64(v[8:16]))
			m.hasTime = true
		case nfulaPayload:
			m.payload, m.hasPayload = v, true
		case nfulaPrefix:
			m.prefix, m.hasPrefix = v, true
		case nfulaSeq:
			if len(v) < 4 {
				return errShortAttr
			}
			m.seq, m.hasSeq = binary.BigEndian.Uint32(v), true
		}
		n = align4(n)
		if n > len(b) {
			n = len(b)
		}
		b = b[n:]
	}
	return nil
}

// bindMessage is the NFULNL_MSG_CONFIG request that binds group to the
// socket, asks for packets copied up to snap bytes, a sequence number in
// each message and a datagram per message (queue threshold 1), all in one
// message: the kernel creates the instance and then applies the settings
// in the same call. It asks for an acknowledgement, with sequence number
// seq, so that binding can be told to have failed.
func bindMessage(group uint16, snap uint32, seq uint32) netlink.Message {
	var attrs []byte
	attrs = appendAttr(attrs, nfulaCfgCmd, []byte{nfulnlCmdBind})
	attrs = appendAttr(attrs, nfulaCfgMode, append(binary.BigEndian.AppendUint32(nil, snap), nfulnlCopyPkt, 0))
	attrs = appendAttr(attrs, nfulaCfgQThresh, binary.BigEndian.AppendUint32(nil, 1))
	attrs = appendAttr(attrs, nfulaCfgFlags, binary.BigEndian.AppendUint16(nil, nfulnlFlagSeq))
	data := []byte{nfgenFamilyUnspec, nfnetlinkV0}
	data = binary.BigEndian.AppendUint16(data, group) // res_id: the group
	return netlink.Message{
		Header: netlink.Header{
			Type:     netlink.HeaderType(nfnlSubsysULOG<<8 | nfulnlMsgConfig),
			Flags:    netlink.Request | netlink.Acknowledge,
			Sequence: seq,
		},
		Data: append(data, attrs...),
	}
}

// appendAttr appends a netlink attribute and its padding.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlattrHdrLen+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func align4(n int) int { return (n + 3) &^ 3 }
