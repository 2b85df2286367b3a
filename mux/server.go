//go:build unix

package mux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Handler does a master's real work on its SSH connection. The Server
// speaks the protocol, checks peers, receives the descriptors and keeps
// the forward list; the Handler opens channels.
type Handler interface {
	// Session opens a session channel for req on the descriptors the
	// client passed (stdin, stdout, stderr; the Session owns them from
	// here, also on error) and starts it.
	Session(ctx context.Context, req *SessionRequest, stdin, stdout, stderr *os.File) (Session, error)
	// StdioForward opens a direct-tcpip (or direct-streamlocal) channel
	// to host:port relayed to stdin and stdout, which it owns.
	StdioForward(ctx context.Context, req *StdioRequest, stdin, stdout *os.File) (Session, error)
	// OpenForward starts a forward; for a remote forward of port 0 it
	// returns the port the server allocated.
	OpenForward(f Forward) (allocated uint32, err error)
	// CloseForward stops a forward OpenForward started (allocated is what
	// OpenForward returned).
	CloseForward(f Forward, allocated uint32) error
}

// Session is a running session or stdio forward.
type Session interface {
	// TTYFailed reports that the server refused the pseudo-terminal.
	TTYFailed() bool
	// Wait blocks until the session ends. ok is false when it ended
	// without an exit status (a signal, a lost connection, Close), in
	// which case the client gets no exit message and exits 255.
	Wait() (status uint32, ok bool)
	// Close abandons the session (its client went away); Wait returns.
	Close() error
}

// WindowChanger is a Handler that follows its PTY sessions' terminal sizes
// when the master gets SIGWINCH (which OpenSSH clients relay to it).
type WindowChanger interface {
	WindowChanged()
}

// ServerOptions adjust a Server.
type ServerOptions struct {
	Log *slog.Logger // nil: discard
	// Confirm, when set, is asked before each session, forward, stdio
	// forward, stop and terminate (ControlMaster ask / autoask); false is
	// PERMISSION_DENIED.
	Confirm func(prompt string) bool
	// Terminate is called once after an exit request (-O exit) was
	// answered; the Server has stopped listening and abandoned its
	// sessions. The caller closes its SSH connection and exits.
	Terminate func()
	// StopListening is called after a stop request (-O stop) removed the
	// socket; sessions carry on.
	StopListening func()
	// PID is what ALIVE reports; zero is this process's pid.
	PID int
	// MaxConns bounds the control connections served at once (default
	// 1024); more are closed at once.
	MaxConns int
	// Extensions are offered in HELLO (OpenSSH's clients ignore those they
	// do not know): rssh's master names there what it delivers, so an
	// rssh client can tell it from an OpenSSH master.
	Extensions [][2]string
}

// Server is a master: it serves OpenSSH's (and rssh's) mux clients on a
// Listener and does their work through a Handler.
type Server struct {
	h    Handler
	opts ServerOptions
	log  *slog.Logger

	mu        sync.Mutex
	l         *Listener
	conns     map[*serverConn]struct{}
	active    int // control connections with a live session or stdio forward
	idleSince time.Time
	changed   chan struct{} // closed and replaced whenever active changes
	forwards  []*fwdEntry
	nextSID   uint32
	done      chan struct{}
	doneOnce  sync.Once
}

type fwdEntry struct {
	f         Forward
	allocated uint32
}

// NewServer returns a master that hands its work to h.
func NewServer(h Handler, opts ServerOptions) *Server {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.PID == 0 {
		opts.PID = os.Getpid()
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1024
	}
	return &Server{h: h, opts: opts, log: log, conns: map[*serverConn]struct{}{},
		changed: make(chan struct{}), idleSince: time.Now(), done: make(chan struct{})}
}

// Serve accepts clients on l until l is closed, Shutdown, or an exit
// request. Peers whose effective uid is neither this process's uid nor 0
// are refused, as OpenSSH's master refuses them.
func (s *Server) Serve(l *Listener) error {
	s.mu.Lock()
	s.l = l
	s.mu.Unlock()
	if wc, ok := s.h.(WindowChanger); ok {
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for {
				select {
				case <-winch:
					wc.WindowChanged()
				case <-s.done:
					return
				}
			}
		}()
	}
	uid := uint32(os.Getuid())
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and friends: back off, as net/http does, never spin.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			s.log.Warn("mux accept", "err", err)
			select {
			case <-time.After(delay):
			case <-s.done:
				return nil
			}
			continue
		}
		delay = 0
		raw, err := c.SyscallConn()
		var peer uint32
		var perr error
		if err == nil {
			raw.Control(func(fd uintptr) { peer, perr = peerUID(int(fd)) })
		} else {
			perr = err
		}
		if perr != nil {
			s.log.Warn("mux peer credentials", "err", perr)
			c.Close()
			continue
		}
		if peer != 0 && peer != uid {
			s.log.Warn(fmt.Sprintf("multiplex uid mismatch: peer euid %d != uid %d", peer, uid))
			c.Close()
			continue
		}
		sc := &serverConn{s: s, c: c}
		s.mu.Lock()
		if len(s.conns) >= s.opts.MaxConns {
			s.mu.Unlock()
			s.log.Warn("mux: too many control connections", "max", s.opts.MaxConns)
			c.Close()
			continue
		}
		s.conns[sc] = struct{}{}
		s.mu.Unlock()
		go sc.serve()
	}
}

// Active is the number of clients with a live session or stdio forward:
// a ControlPersist master exits only when it has been zero long enough.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// WaitIdle returns nil once no session has been live for d in a row (the
// ControlPersist timeout: a session open when the time is up is waited
// for, and the time starts again when it ends), or ctx's error, or
// ErrTerminated when the master was told to exit.
func (s *Server) WaitIdle(ctx context.Context, d time.Duration) error {
	for {
		s.mu.Lock()
		active, since, changed := s.active, s.idleSince, s.changed
		s.mu.Unlock()
		var timer <-chan time.Time
		if active == 0 {
			left := time.Until(since.Add(d))
			if left <= 0 {
				return nil
			}
			t := time.NewTimer(left)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrTerminated
		case <-changed:
		case <-timer:
		}
	}
}

// ErrTerminated is WaitIdle's answer after an exit request or Shutdown.
var ErrTerminated = errors.New("master terminated")

// Done is closed after an exit request (-O exit) or Shutdown.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) addActive(n int) {
	s.mu.Lock()
	s.active += n
	if s.active == 0 {
		s.idleSince = time.Now()
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Shutdown stops listening (removing the socket), abandons every session
// (their clients exit 255, as when an OpenSSH master exits) and closes
// every control connection except keep.
func (s *Server) Shutdown() { s.shutdown(nil) }

func (s *Server) shutdown(keep *serverConn) {
	s.mu.Lock()
	l := s.l
	s.l = nil
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		if c != keep {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	// The socket goes before done is closed: a waiter on Done may end the
	// process at once, and must not leave the socket behind.
	if l != nil {
		l.Close()
	}
	s.doneOnce.Do(func() { close(s.done) })
	for _, c := range conns {
		c.abandon()
	}
}

func (s *Server) stopListening() {
	s.mu.Lock()
	l := s.l
	s.l = nil
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
}

func (s *Server) confirm(prompt string) bool {
	return s.opts.Confirm == nil || s.opts.Confirm(prompt)
}

// serverConn is one client's control connection.
type serverConn struct {
	s  *Server
	c  *net.UnixConn
	wm sync.Mutex // one writer at a time: replies and the exit message

	mu    sync.Mutex
	sess  Session
	hello *Hello // the client's
}

func (c *serverConn) send(b []byte) error {
	c.wm.Lock()
	defer c.wm.Unlock()
	return writePacket(c.c, b)
}

func (c *serverConn) abandon() {
	c.mu.Lock()
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
	c.c.Close()
}

func replyErr(typ, id uint32, reason string) []byte { return msg(typ).u32(id).str(reason).b }
func replyOK(id uint32) []byte                      { return msg(sOK).u32(id).b }

func (c *serverConn) serve() {
	s := c.s
	defer func() {
		c.abandon()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	hello := msg(msgHello).u32(Version)
	if _, ok := s.h.(ProxyHandler); ok {
		hello.str(extProxyReplies).str("1")
	}
	for _, e := range s.opts.Extensions {
		hello.str(e[0]).str(e[1])
	}
	if err := c.send(hello.b); err != nil {
		return
	}
	b, err := readPacket(c.c)
	if err != nil {
		return
	}
	r, err := DecodeRequest(b)
	if err != nil || r.Type != msgHello {
		s.log.Debug("mux: expected HELLO", "err", err)
		return
	}
	if r.Hello.Version != Version {
		s.log.Warn(fmt.Sprintf("unsupported multiplexing protocol version %d (expected %d)", r.Hello.Version, Version))
		return
	}
	c.hello = r.Hello
	for {
		b, err := readPacket(c.c)
		if err != nil {
			return
		}
		r, err := DecodeRequest(b)
		if err != nil {
			s.log.Debug("mux: malformed message", "err", err)
			return
		}
		if !c.handle(r) {
			return
		}
	}
}

// handle answers one request; false drops the connection.
func (c *serverConn) handle(r *Request) bool {
	s := c.s
	switch r.Type {
	case msgHello:
		s.log.Debug("mux: HELLO received twice")
		return false
	case cAliveCheck:
		return c.send(msg(sAlive).u32(r.ID).u32(uint32(s.opts.PID)).b) == nil
	case cTerminate:
		if !s.confirm("Terminate shared connection? ") {
			return c.send(replyErr(sPermissionDenied, r.ID, "Permission denied")) == nil
		}
		c.send(replyOK(r.ID))
		s.shutdown(c)
		if s.opts.Terminate != nil {
			s.opts.Terminate()
		}
		return false
	case cStopListening:
		if !s.confirm("Disable further multiplexing on shared connection? ") {
			return c.send(replyErr(sPermissionDenied, r.ID, "Permission denied")) == nil
		}
		s.stopListening()
		if s.opts.StopListening != nil {
			s.opts.StopListening()
		}
		return c.send(replyOK(r.ID)) == nil
	case cOpenFwd:
		return c.send(s.openForward(r.ID, *r.Forward)) == nil
	case cCloseFwd:
		return c.send(s.closeForward(r.ID, *r.Forward)) == nil
	case cNewSession:
		return c.newSession(r.Session)
	case cNewStdioFwd:
		return c.newStdio(r.Stdio)
	case cProxy:
		return c.proxy(r.ID)
	}
	s.log.Debug(fmt.Sprintf("mux: unsupported mux message 0x%08x", r.Type))
	return c.send(replyErr(sFailure, r.ID, "unsupported request")) == nil
}

// proxy puts the connection in proxy mode (PROTOCOL.mux section 9): from
// MUX_S_PROXY on it carries the SSH connection protocol, which the
// Handler relays. It counts as a session while it lasts, as ControlPersist
// must wait for it.
func (c *serverConn) proxy(id uint32) bool {
	s := c.s
	ph, ok := s.h.(ProxyHandler)
	if !ok {
		return c.send(replyErr(sFailure, id, "unsupported request")) == nil
	}
	if !s.confirm("Allow multiplex proxy connection? ") {
		return c.send(replyErr(sPermissionDenied, id, "Permission denied")) == nil
	}
	if err := c.send(msg(sProxy).u32(id).b); err != nil {
		return false
	}
	s.addActive(1)
	defer s.addActive(-1)
	var opts ProxyOptions
	for _, e := range c.hello.Extensions {
		if e[0] == extAgentProxy {
			opts.Agent = true
		}
	}
	ph.Proxy(c.c, opts)
	return false
}

func (c *serverConn) recvFds(n int) ([]*os.File, error) {
	var fs []*os.File
	for i := 0; i < n; i++ {
		f, err := recvFd(c.c)
		if err != nil {
			for _, f := range fs {
				f.Close()
			}
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func (c *serverConn) newSession(req *SessionRequest) bool {
	s := c.s
	fs, err := c.recvFds(3)
	if err != nil {
		s.log.Debug("mux: failed to receive fds", "err", err)
		c.send(replyErr(sFailure, req.ID, "did not receive file descriptors"))
		return false
	}
	return c.start(req.ID, fs, "Allow shared connection? ", func() (Session, error) {
		return s.h.Session(context.Background(), req, fs[0], fs[1], fs[2])
	}, true)
}

func (c *serverConn) newStdio(req *StdioRequest) bool {
	s := c.s
	fs, err := c.recvFds(2)
	if err != nil {
		s.log.Debug("mux: failed to receive fds", "err", err)
		c.send(replyErr(sFailure, req.ID, "did not receive file descriptors"))
		return false
	}
	prompt := fmt.Sprintf("Allow forward to [%s]:%d? ", req.Host, req.Port)
	if req.Port == PortStreamLocal {
		prompt = "Allow forward to path " + req.Host
	}
	s.log.Debug(fmt.Sprintf("mux: stdio fwd to %s:%d", req.Host, req.Port))
	return c.start(req.ID, fs, prompt, func() (Session, error) {
		return s.h.StdioForward(context.Background(), req, fs[0], fs[1])
	}, false)
}

// start opens a session or stdio forward and, in the background, waits
// for its end to send the exit message and close the connection.
func (c *serverConn) start(id uint32, fs []*os.File, prompt string, open func() (Session, error), exitMsg bool) bool {
	s := c.s
	closeAll := func() {
		for _, f := range fs {
			f.Close()
		}
	}
	c.mu.Lock()
	busy := c.sess != nil
	c.mu.Unlock()
	if busy {
		closeAll()
		return c.send(replyErr(sFailure, id, "Multiple sessions not supported")) == nil
	}
	if !s.confirm(prompt) {
		closeAll()
		return c.send(replyErr(sPermissionDenied, id, "Permission denied")) == nil
	}
	s.addActive(1)
	sess, err := open()
	if err != nil {
		s.addActive(-1)
		s.log.Debug("mux: session open failed", "err", err)
		return c.send(replyErr(sFailure, id, "Session open refused by peer")) == nil
	}
	s.mu.Lock()
	s.nextSID++
	sid := s.nextSID
	s.mu.Unlock()
	c.mu.Lock()
	c.sess = sess
	c.mu.Unlock()
	if err := c.send(msg(sSessionOpened).u32(id).u32(sid).b); err != nil {
		sess.Close()
	} else if sess.TTYFailed() {
		c.send(msg(sTTYAllocFail).u32(sid).b)
	}
	go func() {
		status, ok := sess.Wait()
		if ok && exitMsg {
			c.send(msg(sExitMessage).u32(sid).u32(status).b)
		}
		// The session is over: closing the control connection is what
		// tells the client to exit.
		c.c.Close()
		s.addActive(-1)
	}()
	return true
}

func sameForward(a, b Forward) bool { return a == b }

func (s *Server) openForward(id uint32, f Forward) []byte {
	invalid := replyErr(sFailure, id, "Invalid forwarding request")
	switch {
	case f.Type != FwdLocal && f.Type != FwdRemote && f.Type != FwdDynamic:
		return invalid
	case f.Type == FwdDynamic && f.ListenPort == PortStreamLocal:
		return invalid
	case f.Type != FwdDynamic && f.Type != FwdRemote && f.ConnectPort == 0:
		return invalid
	case f.Type != FwdDynamic && f.ConnectHost == "":
		return invalid
	}
	s.mu.Lock()
	for _, e := range s.forwards {
		if sameForward(e.f, f) {
			s.mu.Unlock()
			if f.Type == FwdRemote && f.ListenPort == 0 {
				return msg(sRemotePort).u32(id).u32(e.allocated).b
			}
			return replyOK(id)
		}
	}
	s.mu.Unlock()
	if !s.confirm(fmt.Sprintf("Open %s? ", f)) {
		return replyErr(sPermissionDenied, id, "Permission denied")
	}
	allocated, err := s.h.OpenForward(f)
	if err != nil {
		s.log.Info(fmt.Sprintf("requested %s failed", f), "err", err)
		if f.Type == FwdRemote {
			if f.ListenPort == PortStreamLocal {
				return replyErr(sFailure, id, "remote port forwarding failed for listen path "+f.ListenHost)
			}
			return replyErr(sFailure, id, fmt.Sprintf("remote port forwarding failed for listen port %d", f.ListenPort))
		}
		return replyErr(sFailure, id, "Port forwarding failed")
	}
	s.mu.Lock()
	s.forwards = append(s.forwards, &fwdEntry{f: f, allocated: allocated})
	s.mu.Unlock()
	if f.Type == FwdRemote && f.ListenPort == 0 {
		return msg(sRemotePort).u32(id).u32(allocated).b
	}
	return replyOK(id)
}

func (s *Server) closeForward(id uint32, f Forward) []byte {
	s.mu.Lock()
	var found *fwdEntry
	var i int
	for j, e := range s.forwards {
		// Local and dynamic forwards live in one list in OpenSSH.
		ef := e.f
		if ef.Type != FwdRemote && f.Type != FwdRemote {
			ef.Type = f.Type
		}
		if sameForward(ef, f) {
			found, i = e, j
			break
		}
	}
	if found != nil {
		s.forwards = append(s.forwards[:i], s.forwards[i+1:]...)
	}
	s.mu.Unlock()
	if found == nil {
		return replyErr(sFailure, id, "port not forwarded")
	}
	if err := s.h.CloseForward(found.f, found.allocated); err != nil {
		if f.Type == FwdRemote {
			return replyErr(sFailure, id, "port not in permitted opens")
		}
		return replyErr(sFailure, id, "port not found")
	}
	return replyOK(id)
}
