package mux

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Proxy mode (PROTOCOL.mux section 9) frames SSH connection-protocol
// messages (RFC 4254) on the control socket as unencrypted, unpadded
// transport packets:
//
//	uint32 packet length
//	byte   padding length (0)
//	byte   message type
//	byte[] payload
//
// as OpenSSH's ssh_packet_send_mux and ssh_packet_read_poll2_mux do.

// SSH connection-protocol message numbers (RFC 4254 section 9).
const (
	msgGlobalRequest      = 80
	msgRequestSuccess     = 81
	msgRequestFailure     = 82
	msgChannelOpen        = 90
	msgChannelOpenConfirm = 91
	msgChannelOpenFailure = 92
	msgChannelWindowAdj   = 93
	msgChannelData        = 94
	msgChannelExtData     = 95
	msgChannelEOF         = 96
	msgChannelClose       = 97
	msgChannelRequest     = 98
	msgChannelSuccess     = 99
	msgChannelFailure     = 100
)

// maxProxyPacket bounds a proxy packet as OpenSSH's PACKET_MAX_SIZE does.
const maxProxyPacket = 256 * 1024

// readProxyPacket reads one proxy-mode packet and returns its message
// (type byte and payload), refusing a length over maxProxyPacket before
// allocating.
func readProxyPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 2 || n > maxProxyPacket {
		return nil, fmt.Errorf("proxy packet of %d bytes is out of bounds", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	// b[0] is the padding length, always 0 from OpenSSH and ignored as
	// OpenSSH ignores it.
	return b[1:], nil
}

// minProxyPacket is the shortest packet OpenSSH's reader takes
// (ssh_packet_read_poll2_mux: "packlen < 4 + 1" is an incomplete
// message): an empty REQUEST_SUCCESS or REQUEST_FAILURE is shorter.
const minProxyPacket = 5

// appendProxyPacket frames the message m (type byte and payload). A
// message too short for OpenSSH's reader gets zero bytes after its
// payload, which a reply's reader leaves unread.
func appendProxyPacket(out, m []byte) []byte {
	n := max(len(m)+1, minProxyPacket)
	out = binary.BigEndian.AppendUint32(out, uint32(n))
	out = append(out, 0)
	out = append(out, m...)
	for i := len(m) + 1; i < n; i++ {
		out = append(out, 0)
	}
	return out
}

// proxyMsg is one connection-protocol message, decoded as far as the relay
// needs: the fields a type has are set, Rest is what follows them
// (channel-type-specific or request-specific data).
type proxyMsg struct {
	Type      byte
	Name      string // global or channel request name, channel type
	WantReply bool
	Recipient uint32 // the receiver's channel id
	Sender    uint32 // the sender's channel id (OPEN, OPEN_CONFIRMATION)
	Window    uint32 // initial window (OPEN, OPEN_CONFIRMATION), bytes to add (WINDOW_ADJUST)
	MaxPacket uint32
	Code      uint32 // extended-data type, open-failure reason
	Data      []byte // DATA, EXTENDED_DATA; description of OPEN_FAILURE
	Rest      []byte
}

// parseProxyMsg decodes m (type byte and payload). Only connection
// protocol messages (80-100) are accepted; the others are an error.
func parseProxyMsg(m []byte) (*proxyMsg, error) {
	if len(m) < 1 {
		return nil, errMalformed
	}
	p := &parser{b: m[1:]}
	pm := &proxyMsg{Type: m[0]}
	switch pm.Type {
	case msgGlobalRequest:
		pm.Name = p.str()
		pm.WantReply = p.bool()
	case msgRequestSuccess, msgRequestFailure:
	case msgChannelOpen:
		pm.Name = p.str()
		pm.Sender = p.u32()
		pm.Window = p.u32()
		pm.MaxPacket = p.u32()
	case msgChannelOpenConfirm:
		pm.Recipient = p.u32()
		pm.Sender = p.u32()
		pm.Window = p.u32()
		pm.MaxPacket = p.u32()
	case msgChannelOpenFailure:
		pm.Recipient = p.u32()
		pm.Code = p.u32()
		pm.Data = []byte(p.str())
		if p.more() {
			p.str() // language tag
		}
	case msgChannelWindowAdj:
		pm.Recipient = p.u32()
		pm.Window = p.u32()
	case msgChannelData:
		pm.Recipient = p.u32()
		pm.Data = p.bytes()
	case msgChannelExtData:
		pm.Recipient = p.u32()
		pm.Code = p.u32()
		pm.Data = p.bytes()
	case msgChannelEOF, msgChannelClose, msgChannelSuccess, msgChannelFailure:
		pm.Recipient = p.u32()
	case msgChannelRequest:
		pm.Recipient = p.u32()
		pm.Name = p.str()
		pm.WantReply = p.bool()
	default:
		return nil, fmt.Errorf("unexpected message type %d", pm.Type)
	}
	if p.err != nil {
		return nil, fmt.Errorf("message type %d: %w", pm.Type, p.err)
	}
	pm.Rest = p.b
	return pm, nil
}

// marshal encodes pm back into a message (type byte and payload).
func (pm *proxyMsg) marshal() []byte {
	b := &builder{b: []byte{pm.Type}}
	switch pm.Type {
	case msgGlobalRequest:
		b.str(pm.Name).bool(pm.WantReply)
	case msgChannelOpen:
		b.str(pm.Name).u32(pm.Sender).u32(pm.Window).u32(pm.MaxPacket)
	case msgChannelOpenConfirm:
		b.u32(pm.Recipient).u32(pm.Sender).u32(pm.Window).u32(pm.MaxPacket)
	case msgChannelOpenFailure:
		b.u32(pm.Recipient).u32(pm.Code).str(string(pm.Data)).str("")
	case msgChannelWindowAdj:
		b.u32(pm.Recipient).u32(pm.Window)
	case msgChannelData:
		b.u32(pm.Recipient).bytes(pm.Data)
	case msgChannelExtData:
		b.u32(pm.Recipient).u32(pm.Code).bytes(pm.Data)
	case msgChannelEOF, msgChannelClose, msgChannelSuccess, msgChannelFailure:
		b.u32(pm.Recipient)
	case msgChannelRequest:
		b.u32(pm.Recipient).str(pm.Name).bool(pm.WantReply)
	}
	b.b = append(b.b, pm.Rest...)
	return b.b
}

// bytes reads a string without copying it into a Go string.
func (p *parser) bytes() []byte {
	n := p.u32()
	if p.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(p.b)) {
		p.err = errMalformed
		return nil
	}
	s := p.b[:n:n]
	p.b = p.b[n:]
	return s
}

func (p *parser) bool() bool {
	if p.err != nil {
		return false
	}
	if len(p.b) < 1 {
		p.err = errMalformed
		return false
	}
	v := p.b[0] != 0
	p.b = p.b[1:]
	return v
}

func (m *builder) bytes(v []byte) *builder {
	m.u32(uint32(len(v)))
	m.b = append(m.b, v...)
	return m
}

func (m *builder) bool(v bool) *builder {
	if v {
		m.b = append(m.b, 1)
	} else {
		m.b = append(m.b, 0)
	}
	return m
}

// freeID is the next channel id after *next that chans does not use; ids
// wrap around, and an id still open is skipped.
func freeID[T any](next *uint32, chans map[uint32]T) uint32 {
	for {
		*next++
		if _, used := chans[*next]; !used {
			return *next
		}
	}
}
