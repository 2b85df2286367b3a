package sshproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Destination-constrained agent keys (ssh-add -h) sign only on a
// connection the client has bound to the server with the agent extension
// session-bind@openssh.com (PROTOCOL.agent): the server's host key, the
// session identifier, the server's signature over it from the first key
// exchange, and whether the agent is being forwarded. The agent verifies
// that signature itself, so only the server's own can be sent.
//
// x/crypto verifies that signature inside its handshake and exposes only
// the session identifier (ssh.Conn.SessionID, known once NewClientConn has
// returned). The first key exchange is sent in the clear, though, so
// kexTap reads the server's KEX reply (host key blob, ephemeral key,
// signature) off the wire as the bytes go by, stopping at the server's
// first NEWKEYS; the signature is checked against the session identifier
// before it is sent. The identifier itself comes from the data an agent key
// is asked to sign (a publickey request starts with it), so the bind
// happens just before the first agent signature, not before the agent's
// keys are listed as in OpenSSH. An upstream API (the KEX signature next to
// SessionID, or a callback after key exchange and before authentication)
// would remove the tap.

const (
	sessionBindExtension = "session-bind@openssh.com"

	// tapMaxBuffered bounds what kexTap holds while it waits for a whole
	// packet: x/crypto's own packet limit plus a version line.
	tapMaxBuffered = 256<<10 + 4 + 256
	tapMaxPacket   = 256 << 10
	tapMaxPreamble = 64 << 10 // lines before the server's version line

	msgNewKeys     = 21
	msgKexReply    = 31 // KEXDH_REPLY, KEX_ECDH_REPLY, and the hybrid ones
	msgKexGexReply = 33 // KEX_DH_GEX_REPLY (31 is then the group)
)

// kexTap is a net.Conn that watches what the server sends until its first
// NEWKEYS and keeps the KEX reply; after that it is a plain pass-through.
type kexTap struct {
	net.Conn
	done atomic.Bool // seen NEWKEYS, or gave up

	mu       sync.Mutex
	version  bool // past the server's version line
	preamble int
	buf      []byte
	reply31  []byte
	reply33  []byte
	complete bool
}

func newKexTap(c net.Conn) *kexTap { return &kexTap{Conn: c} }

func (t *kexTap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 && !t.done.Load() {
		t.feed(p[:n])
	}
	return n, err
}

func (t *kexTap) stop(complete bool) {
	t.complete = complete
	t.buf = nil
	t.done.Store(true)
}

func (t *kexTap) feed(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done.Load() {
		return
	}
	if len(t.buf)+len(p) > tapMaxBuffered {
		t.stop(false)
		return
	}
	t.buf = append(t.buf, p...)
	for !t.version {
		i := bytes.IndexByte(t.buf, '\n')
		if i < 0 {
			return
		}
		t.preamble += i + 1
		if t.preamble > tapMaxPreamble {
			t.stop(false)
			return
		}
		t.version = bytes.HasPrefix(t.buf, []byte("SSH-"))
		t.buf = t.buf[i+1:]
	}
	for len(t.buf) >= 4 {
		n := binary.BigEndian.Uint32(t.buf)
		if n < 5 || n > tapMaxPacket {
			t.stop(false)
			return
		}
		if uint64(len(t.buf)) < 4+uint64(n) {
			return
		}
		body := t.buf[4 : 4+n]
		t.buf = t.buf[4+n:]
		pad := uint32(body[0])
		if pad+1 >= n {
			t.stop(false)
			return
		}
		payload := body[1 : n-pad]
		switch payload[0] {
		case msgKexReply:
			t.reply31 = bytes.Clone(payload)
		case msgKexGexReply:
			t.reply33 = bytes.Clone(payload)
		case msgNewKeys:
			t.stop(true)
			return
		}
	}
}

// initial is the server's host key blob and its signature over the
// exchange hash of the first key exchange, as sent in the KEX reply.
func (t *kexTap) initial() (hostKey, sig []byte, ok bool) {
	if t == nil {
		return nil, nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.complete {
		return nil, nil, false
	}
	reply := t.reply31
	if t.reply33 != nil {
		reply = t.reply33
	}
	if len(reply) == 0 {
		return nil, nil, false
	}
	var m struct {
		HostKey   []byte
		Ephemeral []byte // Q_S, or f as an mpint: both are strings on the wire
		Signature []byte
		Rest      []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(reply[1:], &m); err != nil {
		return nil, nil, false
	}
	return m.HostKey, m.Signature, true
}

// bindMsg is the session-bind@openssh.com request body.
type bindMsg struct {
	HostKey    []byte
	SessionID  []byte
	Signature  []byte
	Forwarding bool
}

// sessionBind builds the request for sessionID from what the tap saw,
// after checking the signature is the host key's over sessionID.
func (t *kexTap) sessionBind(sessionID []byte, forwarding bool) ([]byte, error) {
	hk, sig, ok := t.initial()
	if !ok {
		return nil, errors.New("the key exchange reply was not seen")
	}
	key, err := ssh.ParsePublicKey(hk)
	if err != nil {
		return nil, err
	}
	var s ssh.Signature
	if err := ssh.Unmarshal(sig, &s); err != nil {
		return nil, err
	}
	if err := key.Verify(sessionID, &s); err != nil {
		return nil, errors.New("the key exchange signature does not match the session")
	}
	return ssh.Marshal(bindMsg{hk, sessionID, sig, forwarding}), nil
}

// bindAgent sends session-bind@openssh.com; as in OpenSSH, an agent that
// does not know it (or refuses it) is used unbound.
func bindAgent(a agent.ExtendedAgent, t *kexTap, sessionID []byte, forwarding bool, log *slog.Logger) {
	msg, err := t.sessionBind(sessionID, forwarding)
	if err != nil {
		log.Debug("agent not bound to the host key", "err", err)
		return
	}
	if _, err := a.Extension(sessionBindExtension, msg); err != nil {
		log.Debug("agent refused session-bind", "err", err)
		return
	}
	log.Debug("bound agent to hostkey", "forwarding", forwarding)
}

// agentBinder binds one agent connection once, at its first signature.
type agentBinder struct {
	agent agent.ExtendedAgent
	tap   *kexTap
	log   *slog.Logger
	once  sync.Once
}

// sessionIDOf reads the session identifier that starts a publickey
// userauth request's signed data.
func sessionIDOf(data []byte) ([]byte, bool) {
	if len(data) < 4 {
		return nil, false
	}
	n := binary.BigEndian.Uint32(data)
	if n == 0 || n > 64 || uint64(len(data)-4) < uint64(n) {
		return nil, false
	}
	return data[4 : 4+n], true
}

func (b *agentBinder) bind(data []byte) {
	b.once.Do(func() {
		sid, ok := sessionIDOf(data)
		if !ok {
			b.log.Debug("agent not bound: signed data holds no session identifier")
			return
		}
		bindAgent(b.agent, b.tap, sid, false, b.log)
	})
}

// boundSigner is an agent key that binds its agent connection before its
// first signature. When the agent refuses to sign (a key constrained to
// another destination, a declined confirmation), OpenSSH goes on to the
// next key; x/crypto would end authentication on the error, so the
// refusal becomes a signature no server accepts, and x/crypto, told so by
// the server, goes on.
type boundSigner struct {
	ssh.Signer
	binder *agentBinder
}

var _ ssh.AlgorithmSigner = (*boundSigner)(nil)

func (s *boundSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, "")
}

func (s *boundSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s.binder.bind(data)
	var sig *ssh.Signature
	var err error
	if as, ok := s.Signer.(ssh.AlgorithmSigner); ok && algorithm != "" {
		sig, err = as.SignWithAlgorithm(rand, data, algorithm)
	} else {
		sig, err = s.Signer.Sign(rand, data)
	}
	if err == nil {
		return sig, nil
	}
	s.binder.log.Error("rssh: signing with " + keyTypeName(s.PublicKey()) + " " + fingerprint(s.PublicKey()) +
		" from the agent failed: " + err.Error())
	format := algorithm
	if format == "" {
		format = s.PublicKey().Type()
	}
	return &ssh.Signature{Format: format, Blob: []byte{}}, nil
}
