package agentbridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var failure = []byte{msgFailure}

// conn is one downstream connection: the peer it belongs to travels with
// every request into policy and audit, and it has its own upstream
// connection, because agents keep session-bind state per connection.
type conn struct {
	b  *Bridge
	id uint64
	nc *net.UnixConn // nil in FuzzHandleMessage

	peer  peer
	owner bool

	// bind is the last session-bind the bridge verified on the current
	// upstream connection, whether or not the upstream agent supports
	// binds; nil when there is none.
	bind *binding

	mu     sync.Mutex // guards up and closed against close from Serve
	up     net.Conn
	closed bool

	// The rest belongs to the connection's own goroutine.
	nr, upr         *bufio.Reader // read nc and up
	readBy, writeBy time.Time     // deadlines set on nc
	upBy            time.Time     // deadline set on up
}

// ioBuffer is each direction's read buffer: a request or an answer of
// up to this size (a signature, a list of a few keys) is read whole with
// one read(2), header and body together.
const ioBuffer = 1024

// binding is an accepted session-bind@openssh.com.
type binding struct {
	hostKey    []byte
	hostKeyFP  string
	sessionID  []byte
	forwarding bool
}

// identify asks the kernel who the peer is; failing that, the peer is
// treated as nobody in particular (uid MaxUint32) and will be refused.
func (c *conn) identify() error {
	p, err := peerOf(c.nc)
	if err != nil {
		c.peer = peer{UID: ^uint32(0)}
		return err
	}
	c.peer = p
	c.owner = p.UID == c.b.owner
	return nil
}

// serve checks the peer and then answers its requests one at a time until
// it leaves, errs, idles out or the bridge stops.
func (c *conn) serve() {
	defer c.close()
	if err := c.identify(); err != nil {
		c.audit(slog.LevelInfo, "connect", "refused", "peer credentials: "+err.Error())
		return
	}
	if !c.owner && !c.b.allowUIDs[c.peer.UID] {
		// Refused before reading a byte: the peer learns nothing.
		c.audit(slog.LevelInfo, "connect", "refused", "uid "+strconv.FormatUint(uint64(c.peer.UID), 10)+" is not allowed")
		return
	}
	c.audit(slog.LevelDebug, "connect", "allowed", c.role())
	c.nr = bufio.NewReaderSize(c.nc, ioBuffer)
	for {
		extendDeadline(c.nc.SetReadDeadline, &c.readBy, c.b.cfg.IdleTimeout)
		msg, err := readMessage(c.nr, c.b.cfg.MaxMessage)
		if err != nil {
			c.logClose(err)
			return
		}
		reply, err := c.handle(msg)
		if err != nil {
			c.logClose(err)
			return
		}
		extendDeadline(c.nc.SetWriteDeadline, &c.writeBy, c.b.cfg.IdleTimeout)
		if _, err := c.nc.Write(frame(reply)); err != nil {
			c.logClose(err)
			return
		}
	}
}

// extendDeadline moves a deadline to now+d, but leaves it while it is still
// within a sixteenth of d (at most a second) of that: every call reprograms
// a runtime timer, and a timeout of minutes need not be exact to the
// millisecond.
func extendDeadline(set func(time.Time) error, by *time.Time, d time.Duration) {
	now := time.Now()
	if by.Sub(now) > d-min(d/16, time.Second) {
		return
	}
	*by = now.Add(d)
	set(*by)
}

func (c *conn) role() string {
	if c.owner {
		return "owner"
	}
	return "allowed uid"
}

// closed_ logs why the connection ends: quietly when the peer hung up,
// as an audit line when the bridge hung up on it.
func (c *conn) logClose(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		c.audit(slog.LevelDebug, "close", "", "peer closed")
	case errors.As(err, &ne) && ne.Timeout():
		c.audit(slog.LevelInfo, "close", "refused", "timed out waiting for a complete request")
	default:
		c.audit(slog.LevelInfo, "close", "refused", err.Error())
	}
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.nc != nil {
		c.nc.Close()
	}
	if c.up != nil {
		c.up.Close()
		c.up = nil
	}
}

// handle answers one request. An error means the request was malformed and
// the connection must close; a refusal is a failure reply, not an error.
func (c *conn) handle(msg []byte) ([]byte, error) {
	if len(msg) == 0 {
		return nil, errEmptyMessage
	}
	switch t := msg[0]; t {
	case msgRequestIdentities:
		if len(msg) != 1 {
			return nil, fmt.Errorf("identities request: %w", errMalformed)
		}
		return c.list(msg), nil
	case msgSignRequest:
		req, err := parseSignRequest(msg)
		if err != nil {
			return nil, err
		}
		return c.sign(msg, req), nil
	case msgExtension:
		name, contents, err := parseExtension(msg)
		if err != nil {
			return nil, err
		}
		if name != sessionBindExtension {
			if len(name) > maxExtensionName {
				name = name[:maxExtensionName] + "…"
			}
			c.audit(slog.LevelInfo, "extension", "refused", "extension not forwarded", slog.String("extension", name))
			return failure, nil
		}
		sb, err := parseSessionBind(contents)
		if err != nil {
			return nil, err
		}
		return c.sessionBind(msg, sb), nil
	default:
		// Add, remove, remove-all, lock, unlock, smartcard, the v1 protocol
		// and anything unknown: never forwarded, for the owner neither.
		c.audit(slog.LevelInfo, opName(t), "refused", "operation not forwarded by the bridge")
		return failure, nil
	}
}

func (c *conn) list(msg []byte) []byte {
	reply, err := c.roundTrip(msg)
	if err != nil {
		c.audit(slog.LevelWarn, "list", "allowed", "upstream failed", slog.String("err", err.Error()))
		return failure
	}
	switch reply[0] {
	case msgFailure:
		c.audit(slog.LevelDebug, "list", "allowed", "upstream answered failure")
		return reply
	case msgIdentitiesAnswer:
	default:
		c.dropUpstream()
		c.audit(slog.LevelWarn, "list", "allowed", "upstream answered type "+strconv.Itoa(int(reply[0])))
		return failure
	}
	ids, err := parseIdentities(reply)
	if err != nil {
		c.dropUpstream()
		c.audit(slog.LevelWarn, "list", "allowed", "upstream answer: "+err.Error())
		return failure
	}
	if c.owner || len(c.b.allowKeys) == 0 {
		c.audit(slog.LevelDebug, "list", "allowed", c.role(), slog.Int("keys", len(ids)))
		return reply
	}
	kept := ids[:0]
	for _, id := range ids {
		if c.keyAllowed(id.blob) {
			kept = append(kept, id)
		}
	}
	c.audit(slog.LevelInfo, "list", "allowed", "filtered by --allow-key",
		slog.Int("keys", len(kept)), slog.Int("hidden", len(ids)-len(kept)))
	return marshalIdentities(kept)
}

func (c *conn) keyAllowed(blob []byte) bool {
	for _, fp := range keyFingerprints(blob) {
		if c.b.allowKeys[fp] {
			return true
		}
	}
	return false
}

func (c *conn) sign(msg []byte, req signRequest) []byte {
	attrs := []slog.Attr{slog.String("key", fingerprint(req.keyBlob)), slog.Uint64("flags", uint64(req.flags))}
	if reason := c.signPolicy(req); reason != "" {
		c.audit(slog.LevelInfo, "sign", "refused", reason, attrs...)
		return failure
	}
	reply, err := c.roundTrip(msg)
	switch {
	case err != nil:
		c.audit(slog.LevelInfo, "sign", "allowed", c.role(), append(attrs, slog.String("result", "upstream unreachable: "+err.Error()))...)
		return failure
	case reply[0] == msgSignResponse:
		// The audit line is written, and the handler has returned, before
		// the signature is sent, so that no crash can lose the record of a
		// signature the peer got. A signature whose line cannot be written
		// is refused: the bridge gives out no signature it cannot account
		// for. (The upstream agent has signed; the signature goes nowhere.)
		if err := c.audit(slog.LevelInfo, "sign", "allowed", c.role(), append(attrs, slog.String("result", "signed"))...); err != nil {
			c.audit(slog.LevelError, "sign", "refused", "audit log failed: "+err.Error(), attrs...)
			return failure
		}
		return reply
	case reply[0] == msgFailure:
		c.audit(slog.LevelInfo, "sign", "allowed", c.role(), append(attrs, slog.String("result", "upstream refused"))...)
		return reply
	default:
		c.dropUpstream()
		c.audit(slog.LevelInfo, "sign", "allowed", c.role(), append(attrs, slog.String("result", "upstream answered type "+strconv.Itoa(int(reply[0]))))...)
		return failure
	}
}

// signPolicy is why a sign request is refused, or "" if it may go upstream.
func (c *conn) signPolicy(req signRequest) string {
	if c.owner {
		return ""
	}
	if len(c.b.allowKeys) > 0 && !c.keyAllowed(req.keyBlob) {
		return "key not in --allow-key"
	}
	if len(c.b.allowHostKeys) == 0 {
		return ""
	}
	// Destination restriction, as ssh-agent applies it to keys added with
	// `ssh-add -h`: the data must be the user-authentication request of the
	// session the last bind named, so that a bind to an allowed server
	// cannot be replayed to sign for another one.
	switch b := c.bind; {
	case b == nil:
		return "no session-bind on this connection (--allow-host-key needs one)"
	case b.forwarding:
		return "session bound for agent forwarding, not for authentication"
	case !c.b.allowHostKeys[b.hostKeyFP]:
		return "host key not in --allow-host-key"
	}
	u, err := parseUserauthRequest(req.data)
	switch {
	case err != nil:
		return "data is " + err.Error()
	case !bytes.Equal(u.sessionID, c.bind.sessionID):
		return "data is for another session than the bound one"
	case !bytes.Equal(u.keyBlob, req.keyBlob):
		return "data names another key than the one asked to sign"
	case u.hostKey != nil && !bytes.Equal(u.hostKey, c.bind.hostKey):
		return "data names another host key than the bound one"
	}
	return ""
}

func (c *conn) sessionBind(msg []byte, sb sessionBind) []byte {
	hostFP := fingerprint(sb.hostKey)
	attrs := []slog.Attr{slog.String("host_key", hostFP), slog.Bool("forwarding", sb.forwarding)}
	if err := sb.verify(); err != nil {
		c.audit(slog.LevelInfo, "session-bind", "refused", err.Error(), attrs...)
		return failure
	}
	if c.bind != nil && !c.bind.forwarding {
		// As ssh-agent: a connection bound for authentication is not bound
		// again. The bridge enforces it itself, because it records binds
		// its upstream agent may not know (below).
		c.audit(slog.LevelInfo, "session-bind", "refused", "connection already bound for authentication", attrs...)
		return failure
	}
	reply, err := c.roundTrip(msg)
	if err != nil {
		c.audit(slog.LevelInfo, "session-bind", "allowed", c.role(), append(attrs, slog.String("result", "upstream unreachable: "+err.Error()))...)
		return failure
	}
	var result string
	switch reply[0] {
	case msgSuccess:
		result = "bound"
	case msgFailure, msgExtensionFailure:
		// An agent without session-bind (1Password's, older ones) answers
		// failure. The bridge verified the host's signature itself, so its
		// own policy can rest on the bind all the same: --allow-host-key
		// works with such agents. The peer gets the upstream's answer, as
		// ssh expects (it carries on without a bind).
		result = "bound by the bridge; upstream refused"
	default:
		c.dropUpstream()
		c.audit(slog.LevelWarn, "session-bind", "allowed", c.role(), append(attrs, slog.String("result", "upstream answered type "+strconv.Itoa(int(reply[0]))))...)
		return failure
	}
	c.bind = &binding{
		hostKey:    bytes.Clone(sb.hostKey),
		hostKeyFP:  hostFP,
		sessionID:  bytes.Clone(sb.sessionID),
		forwarding: sb.forwarding,
	}
	c.audit(slog.LevelInfo, "session-bind", "allowed", c.role(), append(attrs, slog.String("result", result))...)
	return reply
}

// roundTrip sends one request upstream and reads its answer, dialling first
// if needed. On any failure the upstream connection is dropped, so the next
// request redials (an agent that restarted is reached again).
func (c *conn) roundTrip(msg []byte) ([]byte, error) {
	up, err := c.upstream()
	if err != nil {
		return nil, err
	}
	extendDeadline(up.SetDeadline, &c.upBy, upstreamTimeout)
	if _, err := up.Write(frame(msg)); err != nil {
		c.dropUpstream()
		return nil, err
	}
	reply, err := readMessage(c.upr, c.b.cfg.MaxMessage)
	if err != nil {
		c.dropUpstream()
		return nil, err
	}
	return reply, nil
}

func (c *conn) upstream() (net.Conn, error) {
	c.mu.Lock()
	up, closed := c.up, c.closed
	c.mu.Unlock()
	if closed {
		return nil, net.ErrClosed
	}
	if up != nil && c.upr != nil {
		return up, nil
	}
	// Dial without the lock, so that close (from Serve's shutdown) never
	// waits for a dial; only this connection's goroutine sets c.up.
	up, err := dialUpstream(c.b.cfg.Upstream)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		up.Close()
		return nil, net.ErrClosed
	}
	c.up = up
	c.upr = bufio.NewReaderSize(up, ioBuffer)
	c.upBy = time.Time{}
	return up, nil
}

// dialUpstream connects to the upstream agent. A unix-socket connect fails
// with EAGAIN while the agent's listen backlog is full (OpenSSH's ssh-agent
// listens with a backlog of 128, so 200 peers arriving at once overflow it):
// that is a busy agent, retried briefly. An agent that is not there
// (ENOENT, ECONNREFUSED) fails at once, so the peer gets its failure answer
// without waiting.
func dialUpstream(path string) (net.Conn, error) {
	deadline := time.Now().Add(upstreamDialTimeout)
	pause := time.Millisecond
	for {
		up, err := net.DialTimeout("unix", path, time.Until(deadline))
		if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().Add(pause).After(deadline) {
			return up, err
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// dropUpstream forgets the upstream connection, and with it the bind: a new
// upstream connection starts unbound, in the agent and here alike.
func (c *conn) dropUpstream() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up != nil {
		c.up.Close()
		c.up = nil
	}
	c.upr = nil
	c.bind = nil
}

// audit writes one decision line with the peer and, if any, the bound
// host. Every line is written before the reply to its request is sent; the
// error is the log handler's (for the CLI's, a failed write(2) to stderr).
func (c *conn) audit(level slog.Level, op, decision, reason string, attrs ...slog.Attr) error {
	all := make([]slog.Attr, 0, 8+len(attrs))
	all = append(all, slog.Uint64("conn", c.id))
	all = append(all, c.peer.attrs()...)
	all = append(all, slog.String("op", op))
	if decision != "" {
		all = append(all, slog.String("decision", decision))
	}
	all = append(all, slog.String("reason", reason))
	hasHost := false
	for _, a := range attrs {
		hasHost = hasHost || a.Key == "host_key"
	}
	if c.bind != nil && !hasHost {
		all = append(all, slog.String("host_key", c.bind.hostKeyFP))
	}
	all = append(all, attrs...)
	// slog.Logger.LogAttrs drops the handler's error; the handler is called
	// directly so that a signature's line that was not written is known.
	ctx := context.Background()
	h := c.b.log.Handler()
	if !h.Enabled(ctx, level) {
		return nil
	}
	r := slog.NewRecord(time.Now(), level, "audit", 0)
	r.AddAttrs(all...)
	return h.Handle(ctx, r)
}
