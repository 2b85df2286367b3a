package mux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version this package speaks (SSHMUX_VER).
const Version = 4

// Message types (PROTOCOL.mux section 11, mux.c).
const (
	msgHello          = 0x00000001
	cNewSession       = 0x10000002
	cAliveCheck       = 0x10000004
	cTerminate        = 0x10000005
	cOpenFwd          = 0x10000006
	cCloseFwd         = 0x10000007
	cNewStdioFwd      = 0x10000008
	cStopListening    = 0x10000009
	cProxy            = 0x1000000f
	sOK               = 0x80000001
	sPermissionDenied = 0x80000002
	sFailure          = 0x80000003
	sExitMessage      = 0x80000004
	sAlive            = 0x80000005
	sSessionOpened    = 0x80000006
	sRemotePort       = 0x80000007
	sTTYAllocFail     = 0x80000008
	sProxy            = 0x8000000f
)

// Forward types of OPEN_FWD and CLOSE_FWD.
const (
	FwdLocal   = 1
	FwdRemote  = 2
	FwdDynamic = 3
)

// PortStreamLocal in a forward's port says its host is a Unix socket path
// (PORT_STREAMLOCAL, (u_int)-2).
const PortStreamLocal = 0xfffffffe

// EscapeNone is the escape char of a session without one (0xffffffff).
const EscapeNone = 0xffffffff

const (
	// maxPacket is CHANNEL_MUX_MAX_PACKET: OpenSSH drops a control
	// connection whose packet claims more.
	maxPacket = 256 * 1024
	// maxEnv is MUX_MAX_ENV_VARS: more variables are ignored.
	maxEnv = 4096
)

var errMalformed = errors.New("malformed message")

// readPacket reads one length-prefixed packet, refusing a length over
// maxPacket before allocating. It reads exactly the packet's bytes, never
// more, so the descriptors that follow a NEW_SESSION stay in the socket.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxPacket {
		return nil, fmt.Errorf("packet of %d bytes is over the limit of %d", n, maxPacket)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// writePacket writes b with its length in one write.
func writePacket(w io.Writer, b []byte) error {
	if len(b) > maxPacket {
		return fmt.Errorf("packet of %d bytes is over the limit of %d", len(b), maxPacket)
	}
	out := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(out, uint32(len(b)))
	copy(out[4:], b)
	_, err := w.Write(out)
	return err
}

// builder assembles a packet body.
type builder struct{ b []byte }

func (m *builder) u32(v uint32) *builder {
	m.b = binary.BigEndian.AppendUint32(m.b, v)
	return m
}

func (m *builder) str(s string) *builder {
	m.u32(uint32(len(s)))
	m.b = append(m.b, s...)
	return m
}

func msg(typ uint32) *builder { return new(builder).u32(typ) }

// parser takes a packet body apart; the first short read sets err and
// every later read returns zero values.
type parser struct {
	b   []byte
	err error
}

func (p *parser) u32() uint32 {
	if p.err != nil {
		return 0
	}
	if len(p.b) < 4 {
		p.err = errMalformed
		return 0
	}
	v := binary.BigEndian.Uint32(p.b)
	p.b = p.b[4:]
	return v
}

func (p *parser) str() string {
	n := p.u32()
	if p.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(p.b)) {
		p.err = errMalformed
		p.b = nil
		return ""
	}
	s := string(p.b[:n])
	p.b = p.b[n:]
	return s
}

// cstr is a string that must hold no NUL, as sshbuf_get_cstring.
func (p *parser) cstr() string {
	s := p.str()
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			p.err = errMalformed
			return ""
		}
	}
	return s
}

func (p *parser) more() bool { return p.err == nil && len(p.b) > 0 }

// Hello is a MUX_MSG_HELLO: the version and the extensions offered.
type Hello struct {
	Version    uint32
	Extensions [][2]string
}

// SessionRequest is a MUX_C_NEW_SESSION.
type SessionRequest struct {
	ID         uint32
	TTY        bool
	X11        bool
	Agent      bool
	Subsystem  bool
	EscapeChar uint32 // EscapeNone for none
	Term       string
	Command    string
	Env        []string // NAME=value, as the client's SendEnv/SetEnv chose them
}

// Forward is the body of OPEN_FWD and CLOSE_FWD. A port of
// PortStreamLocal makes its host a Unix socket path; an empty listen host
// is the default bind address, "*" all addresses.
type Forward struct {
	Type        uint32 // FwdLocal, FwdRemote or FwdDynamic
	ListenHost  string
	ListenPort  uint32
	ConnectHost string
	ConnectPort uint32
}

// String is OpenSSH's format_forward (without the gateway-ports lookup).
func (f Forward) String() string {
	lh := f.ListenHost
	if lh == "" {
		lh = "LOCALHOST"
	}
	switch f.Type {
	case FwdLocal:
		return fmt.Sprintf("local forward %s:%d -> %s:%d", lh, int32(f.ListenPort), f.ConnectHost, int32(f.ConnectPort))
	case FwdDynamic:
		return fmt.Sprintf("dynamic forward %s:%d -> *", lh, int32(f.ListenPort))
	case FwdRemote:
		return fmt.Sprintf("remote forward %s:%d -> %s:%d", lh, int32(f.ListenPort), f.ConnectHost, int32(f.ConnectPort))
	}
	return fmt.Sprintf("forward of unknown type %d", f.Type)
}

// StdioRequest is a MUX_C_NEW_STDIO_FWD.
type StdioRequest struct {
	ID   uint32
	Host string
	Port uint32
}

// Request is one decoded client message: exactly one of its pointer
// fields is set, or Type names a request with no body.
type Request struct {
	Type    uint32
	ID      uint32
	Hello   *Hello
	Session *SessionRequest
	Forward *Forward
	Stdio   *StdioRequest
}

// DecodeRequest parses a packet a client sent to a master. It never
// panics and allocates no more than the packet holds.
func DecodeRequest(b []byte) (*Request, error) {
	p := &parser{b: b}
	r := &Request{Type: p.u32()}
	if p.err != nil {
		return nil, p.err
	}
	if r.Type == msgHello {
		h := &Hello{Version: p.u32()}
		for p.more() {
			name, value := p.cstr(), p.str()
			if p.err == nil && len(h.Extensions) < 64 {
				h.Extensions = append(h.Extensions, [2]string{name, value})
			}
		}
		r.Hello = h
		return r, p.err
	}
	r.ID = p.u32()
	switch r.Type {
	case cNewSession:
		s := &SessionRequest{ID: r.ID}
		p.str() // reserved
		s.TTY = p.u32() != 0
		s.X11 = p.u32() != 0
		s.Agent = p.u32() != 0
		s.Subsystem = p.u32() != 0
		s.EscapeChar = p.u32()
		s.Term = p.cstr()
		s.Command = p.cstr()
		for p.more() {
			e := p.cstr()
			if p.err == nil && len(s.Env) < maxEnv {
				s.Env = append(s.Env, e)
			}
		}
		r.Session = s
	case cOpenFwd, cCloseFwd:
		f := &Forward{Type: p.u32(), ListenHost: p.cstr(), ListenPort: p.u32(), ConnectHost: p.cstr(), ConnectPort: p.u32()}
		if p.err == nil && (f.ListenPort != PortStreamLocal && f.ListenPort > 65535 ||
			f.ConnectPort != PortStreamLocal && f.ConnectPort > 65535) {
			p.err = errMalformed
		}
		r.Forward = f
	case cNewStdioFwd:
		s := &StdioRequest{ID: r.ID}
		p.str() // reserved
		s.Host = p.cstr()
		s.Port = p.u32()
		if p.err == nil && s.Port != PortStreamLocal && s.Port > 0x7fffffff {
			p.err = errMalformed
		}
		r.Stdio = s
	}
	if p.err != nil {
		return nil, p.err
	}
	return r, nil
}

// Reply is one decoded master message.
type Reply struct {
	Type   uint32
	ID     uint32 // client request id, or session id of EXIT_MESSAGE / TTY_ALLOC_FAIL
	Value  uint32 // pid of ALIVE, session id of SESSION_OPENED, port of REMOTE_PORT, status of EXIT_MESSAGE
	Reason string // of PERMISSION_DENIED and FAILURE
	Hello  *Hello
}

// DecodeReply parses a packet a master sent to a client.
func DecodeReply(b []byte) (*Reply, error) {
	p := &parser{b: b}
	r := &Reply{Type: p.u32()}
	if p.err != nil {
		return nil, p.err
	}
	switch r.Type {
	case msgHello:
		h := &Hello{Version: p.u32()}
		for p.more() {
			name, value := p.cstr(), p.str()
			if p.err == nil && len(h.Extensions) < 64 {
				h.Extensions = append(h.Extensions, [2]string{name, value})
			}
		}
		r.Hello = h
	case sOK, sTTYAllocFail, sProxy:
		r.ID = p.u32()
	case sPermissionDenied, sFailure:
		r.ID = p.u32()
		r.Reason = p.cstr()
	case sAlive, sSessionOpened, sRemotePort, sExitMessage:
		r.ID = p.u32()
		r.Value = p.u32()
	default:
		// mux.c reads an error string from anything it does not expect.
		r.ID = p.u32()
		r.Reason = p.cstr()
	}
	if p.err != nil {
		return nil, p.err
	}
	return r, nil
}

// extAgentProxy in a client's HELLO says it answers agent channels in
// proxy mode. OpenSSH's ssh does not (it dereferences the key exchange it
// does not have there), so only clients that say so get them; OpenSSH's
// master ignores client extensions it does not know.
const extAgentProxy = "agent-proxy@rssh"

// extProxyReplies in a master's HELLO says it answers a proxy client's
// global requests. OpenSSH's master does not: it passes tcpip-forward on
// and keeps the server's reply, and drops a client that sends any other.
const extProxyReplies = "proxy-replies@rssh"

func encodeHello() []byte { return msg(msgHello).u32(Version).str(extAgentProxy).str("1").b }

func encodeSession(s *SessionRequest) []byte {
	m := msg(cNewSession).u32(s.ID).str("").u32(b2u(s.TTY)).u32(b2u(s.X11)).u32(b2u(s.Agent)).
		u32(b2u(s.Subsystem)).u32(s.EscapeChar).str(s.Term).str(s.Command)
	for _, e := range s.Env {
		m.str(e)
	}
	return m.b
}

func encodeForward(typ, id uint32, f Forward) []byte {
	return msg(typ).u32(id).u32(f.Type).str(f.ListenHost).u32(f.ListenPort).str(f.ConnectHost).u32(f.ConnectPort).b
}

func encodeStdio(s *StdioRequest) []byte {
	return msg(cNewStdioFwd).u32(s.ID).str("").str(s.Host).u32(s.Port).b
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
