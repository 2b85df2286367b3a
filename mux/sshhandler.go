//go:build unix

package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/crash"
	"github.com/rssh/rssh/sshproxy"
)

// EnvVar is one env request for a new session. Value is bytes so a token
// never becomes an unwipeable string here.
type EnvVar struct {
	Name  string
	Value []byte
}

// SSHHandler is the Handler of a master backed by an x/crypto client
// connection: sessions, stdio forwards and -L/-R/-D forwards become
// channels and global requests on Client.
type SSHHandler struct {
	Client *ssh.Client
	// Env returns the env requests of a new session, as a fresh
	// connection would send them (SetEnv, SendEnv, the environment's
	// token). It is asked once per session, and may change req.Command
	// (a preamble); done, when not nil, is called once the requests are
	// sent (to wipe the token). An error refuses the session.
	Env func(req *SessionRequest) (env []EnvVar, done func(), err error)
	// AcceptEnv filters the variables the client passed (its SendEnv and
	// SetEnv), as an OpenSSH master filters them through its own SendEnv;
	// nil drops them all.
	AcceptEnv func(name string) bool
	// ForwardAgent, when set, is called for a session whose client asked
	// for agent forwarding (after the channel opens, before the command).
	ForwardAgent func(ssh.Channel) error
	// Forwarder, when set, starts each forward in place of the handler's
	// own listeners (rssh's connection routes the server's forwarded
	// channels itself, so x/crypto's Client.Listen would get none); it
	// returns what stops the forward and a remote port 0's allocation.
	Forwarder func(f Forward) (stop io.Closer, allocated uint32, err error)
	// RemoteForward, when set, starts a remote forward a proxy-mode
	// client asked for (tcpip-forward on host and port, or
	// streamlocal-forward@openssh.com on path when path is set) and hands
	// each channel the server opens for it to serve; it returns what
	// cancels the forward and a port 0's allocation. Without it a proxy
	// client's remote forwards are refused.
	RemoteForward func(host string, port uint32, path string, serve func(ssh.NewChannel)) (stop io.Closer, allocated uint32, err error)
	// GatewayPorts makes local forwards without a bind address listen on
	// every address.
	GatewayPorts bool
	// PermitRemoteOpen limits where a remote dynamic forward (-R with a
	// port alone) may connect; nil permits any destination.
	PermitRemoteOpen *config.OpenPermits
	Log              *slog.Logger
	// Warn gets one line per failed forwarded connection.
	Warn io.Writer

	mu       sync.Mutex
	forwards map[Forward]io.Closer
	ttys     map[*sshSession]struct{}
	done     chan struct{} // closed when Client's connection ends

	// The server's agent channels, once a proxy client asked for agent
	// forwarding: agentState 0 not claimed yet, 1 routed here, -1 served
	// elsewhere (the master's own ForwardAgent).
	agentState   int
	agentClients map[*proxyConn]int // proxy clients that asked, and how many sessions
}

var (
	_ Handler       = (*SSHHandler)(nil)
	_ WindowChanger = (*SSHHandler)(nil)
)

func (h *SSHHandler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *SSHHandler) warn() io.Writer {
	if h.Warn == nil {
		return io.Discard
	}
	return h.Warn
}

// sshSession is one running session or stdio forward.
type sshSession struct {
	h         *SSHHandler
	ch        io.Closer
	winch     func(w, h int) // sends a window-change
	streams   []*fdStream
	ttyFailed bool
	tty       *fdStream // the terminal whose size is followed
	size      [2]int
	sizeMu    sync.Mutex

	done   chan struct{}
	status uint32
	ok     bool
}

func (s *sshSession) TTYFailed() bool { return s.ttyFailed }

func (s *sshSession) Wait() (uint32, bool) {
	<-s.done
	return s.status, s.ok
}

func (s *sshSession) Close() error {
	s.ch.Close()
	for _, st := range s.streams {
		st.Stop()
	}
	return nil
}

func streams(fs ...*os.File) ([]*fdStream, error) {
	var out []*fdStream
	for _, f := range fs {
		st, err := newFdStream(f)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			for _, f := range fs[len(out):] {
				f.Close()
			}
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func winsize(fd int) (w, h int) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}

// Session opens a session channel and starts req on it. It drives the
// channel itself rather than through x/crypto's Session, whose Wait loses
// a subsystem's exit status (golang/go#35025): scp and sftp read it.
func (h *SSHHandler) Session(ctx context.Context, req *SessionRequest, stdin, stdout, stderr *os.File) (Session, error) {
	sts, err := streams(stdin, stdout, stderr)
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, st := range sts {
			st.Close()
		}
	}
	var env []EnvVar
	if h.Env != nil {
		var done func()
		if env, done, err = h.Env(req); err != nil {
			closeAll()
			return nil, err
		}
		if done != nil {
			defer done()
		}
	}
	ch, reqs, err := h.Client.OpenChannel("session", nil)
	if err != nil {
		closeAll()
		return nil, err
	}
	s := &sshSession{h: h, ch: ch, streams: sts, done: make(chan struct{})}
	s.winch = func(w, ht int) {
		ch.SendRequest("window-change", false, new(builder).u32(uint32(w)).u32(uint32(ht)).u32(0).u32(0).b)
	}
	// The server's requests: the exit status (or signal) comes just
	// before the close; each one that wants an answer gets one.
	type exit struct {
		status uint32
		ok     bool
	}
	exited := make(chan exit, 1)
	crash.Go(func() {
		e, got := exit{}, false
		for r := range reqs {
			switch r.Type {
			case "exit-status":
				if len(r.Payload) >= 4 && !got {
					e, got = exit{binary.BigEndian.Uint32(r.Payload), true}, true
				}
			case "exit-signal":
				// As OpenSSH: a mux client gets no status for a signal.
				got = true
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
		exited <- e
	})
	fail := func(err error) (Session, error) {
		ch.Close()
		closeAll()
		return nil, err
	}
	if req.Agent && h.ForwardAgent != nil {
		if err := h.ForwardAgent(ch); err != nil {
			h.log().Debug("mux: agent forwarding", "err", err)
		}
	}
	for _, e := range req.Env {
		name, value, ok := strings.Cut(e, "=")
		if !ok || name == "" || h.AcceptEnv == nil || !h.AcceptEnv(name) {
			continue
		}
		if _, err := ch.SendRequest("env", false, envPayload(name, []byte(value))); err != nil {
			return fail(err)
		}
	}
	for _, e := range env {
		if _, err := ch.SendRequest("env", false, envPayload(e.Name, e.Value)); err != nil {
			return fail(err)
		}
	}
	if req.TTY {
		w, ht := winsize(int(stdin.Fd()))
		modes := sshproxy.OpenTerminal(stdin).Modes()
		ok, err := ch.SendRequest("pty-req", true, ptyPayload(req.Term, w, ht, modes))
		if err != nil {
			return fail(err)
		}
		if !ok {
			// As OpenSSH: said on the client's stderr, and the session goes on.
			s.ttyFailed = true
			sts[2].Write([]byte("PTY allocation request failed\r\n"))
		} else {
			s.tty, s.size = sts[0], [2]int{w, ht}
		}
	}
	var ok bool
	switch {
	case req.Subsystem:
		ok, err = ch.SendRequest("subsystem", true, new(builder).str(req.Command).b)
	case req.Command == "":
		ok, err = ch.SendRequest("shell", true, nil)
	default:
		ok, err = ch.SendRequest("exec", true, new(builder).str(req.Command).b)
	}
	if err == nil && !ok {
		err = errors.New("the server refused the command")
	}
	if err != nil {
		return fail(err)
	}
	var outputs sync.WaitGroup
	outputs.Add(2)
	crash.Go(func() { defer outputs.Done(); io.Copy(sts[1], ch) })
	crash.Go(func() { defer outputs.Done(); io.Copy(sts[2], ch.Stderr()) })
	var src io.Reader = sts[0]
	if req.TTY && req.EscapeChar != EscapeNone && req.EscapeChar < 256 {
		src = &escapeReader{r: sts[0], char: byte(req.EscapeChar), quit: func() { ch.Close() }, bol: true}
	}
	crash.Go(func() { io.Copy(ch, src); ch.CloseWrite() })
	if s.tty != nil {
		h.mu.Lock()
		if h.ttys == nil {
			h.ttys = map[*sshSession]struct{}{}
		}
		h.ttys[s] = struct{}{}
		h.mu.Unlock()
	}
	crash.Go(func() {
		e := <-exited
		outputs.Wait()
		h.mu.Lock()
		delete(h.ttys, s)
		h.mu.Unlock()
		for _, st := range sts {
			st.Close()
		}
		s.status, s.ok = e.status, e.ok
		close(s.done)
	})
	return s, nil
}

// ptyPayload is a pty-req (RFC 4254 section 6.2) with the modes encoded
// as section 8 says.
func ptyPayload(term string, w, h int, modes ssh.TerminalModes) []byte {
	var m []byte
	for op, v := range modes {
		m = append(m, op)
		m = binary.BigEndian.AppendUint32(m, v)
	}
	m = append(m, 0) // TTY_OP_END
	return new(builder).str(term).u32(uint32(w)).u32(uint32(h)).u32(0).u32(0).str(string(m)).b
}

func envPayload(name string, value []byte) []byte {
	b := make([]byte, 0, 8+len(name)+len(value))
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// WindowChanged sends a window-change for each PTY session whose
// terminal size changed (the master's SIGWINCH, relayed by its clients).
func (h *SSHHandler) WindowChanged() {
	h.mu.Lock()
	var ss []*sshSession
	for s := range h.ttys {
		ss = append(ss, s)
	}
	h.mu.Unlock()
	for _, s := range ss {
		w, ht := winsize(s.tty.fd)
		s.sizeMu.Lock()
		changed := [2]int{w, ht} != s.size
		s.size = [2]int{w, ht}
		s.sizeMu.Unlock()
		if changed {
			s.winch(w, ht)
		}
	}
}

// escapeReader applies the escape character of a mux client's PTY
// session as OpenSSH's client_simple_escape_filter does for the commands
// a shared session has: ~. closes the session, ~~ sends one ~.
type escapeReader struct {
	r       io.Reader
	char    byte
	quit    func()
	bol     bool // at the beginning of a line
	pending bool // saw the escape char at the beginning of a line
	buf     [4096]byte
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for {
		n, err := e.r.Read(e.buf[:min(len(p), len(e.buf))])
		out := p[:0]
		for _, c := range e.buf[:n] {
			switch {
			case e.pending:
				e.pending = false
				if c == '.' {
					e.quit()
					return len(out), io.EOF
				}
				if c != e.char {
					out = append(out, e.char)
				}
				out = append(out, c)
				e.bol = c == '\r' || c == '\n'
			case e.bol && c == e.char:
				e.pending = true
			default:
				out = append(out, c)
				e.bol = c == '\r' || c == '\n'
			}
		}
		if len(out) > 0 || err != nil {
			return len(out), err
		}
	}
}

// StdioForward opens a direct-tcpip (or direct-streamlocal) channel and
// relays it to stdin and stdout.
func (h *SSHHandler) StdioForward(ctx context.Context, req *StdioRequest, stdin, stdout *os.File) (Session, error) {
	sts, err := streams(stdin, stdout)
	if err != nil {
		return nil, err
	}
	var conn net.Conn
	if req.Port == PortStreamLocal {
		conn, err = h.Client.Dial("unix", req.Host)
	} else {
		conn, err = h.Client.Dial("tcp", net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port))))
	}
	if err != nil {
		for _, st := range sts {
			st.Close()
		}
		return nil, err
	}
	s := &sshSession{h: h, ch: conn, streams: sts, done: make(chan struct{})}
	crash.Go(func() {
		crash.Go(func() {
			io.Copy(conn, sts[0])
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		})
		io.Copy(sts[1], conn)
		conn.Close()
		for _, st := range sts {
			st.Close()
		}
		close(s.done)
	})
	return s, nil
}

// OpenForward starts a local, dynamic or remote forward.
func (h *SSHHandler) OpenForward(f Forward) (uint32, error) {
	var c io.Closer
	var allocated uint32
	if h.Forwarder != nil {
		var err error
		if c, allocated, err = h.Forwarder(f); err != nil {
			return 0, err
		}
		h.mu.Lock()
		if h.forwards == nil {
			h.forwards = map[Forward]io.Closer{}
		}
		h.forwards[f] = c
		h.mu.Unlock()
		return allocated, nil
	}
	switch f.Type {
	case FwdLocal, FwdDynamic:
		l, err := h.listenLocal(f)
		if err != nil {
			return 0, err
		}
		c = l
		crash.Go(func() { h.acceptLocal(l, f) })
	case FwdRemote:
		var l net.Listener
		var err error
		if f.ListenPort == PortStreamLocal {
			l, err = h.Client.ListenUnix(f.ListenHost)
		} else {
			host := f.ListenHost
			if host == "" || host == "localhost" {
				host = "127.0.0.1"
			} else if host == "*" {
				host = "0.0.0.0"
			}
			l, err = h.Client.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(f.ListenPort))))
		}
		if err != nil {
			return 0, err
		}
		if f.ListenPort == 0 {
			if a, ok := l.Addr().(*net.TCPAddr); ok {
				allocated = uint32(a.Port)
			}
		}
		c = l
		crash.Go(func() { h.acceptRemote(l, f) })
	default:
		return 0, fmt.Errorf("unknown forward type %d", f.Type)
	}
	h.mu.Lock()
	if h.forwards == nil {
		h.forwards = map[Forward]io.Closer{}
	}
	h.forwards[f] = c
	h.mu.Unlock()
	return allocated, nil
}

// CloseForward stops listening for f; connections already forwarded go on.
func (h *SSHHandler) CloseForward(f Forward, allocated uint32) error {
	h.mu.Lock()
	c, ok := h.forwards[f]
	delete(h.forwards, f)
	h.mu.Unlock()
	if !ok {
		return errors.New("port not found")
	}
	return c.Close()
}

func (h *SSHHandler) listenLocal(f Forward) (net.Listener, error) {
	if f.ListenPort == PortStreamLocal {
		return net.Listen("unix", f.ListenHost)
	}
	host := f.ListenHost
	switch {
	case host == "*" || host == "" && h.GatewayPorts:
		host = ""
	case host == "" || host == "localhost":
		host = "127.0.0.1"
	}
	return net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(f.ListenPort))))
}

func target(host string, port uint32) (string, string) {
	if port == PortStreamLocal {
		return "unix", host
	}
	return "tcp", net.JoinHostPort(host, strconv.Itoa(int(port)))
}

func (h *SSHHandler) acceptLocal(l net.Listener, f Forward) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			h.log().Warn("mux: local forward accept", "err", err)
			continue
		}
		if f.Type == FwdDynamic {
			crash.Go(func() { sshproxy.ServeSOCKS(c, h.Client.Dial, h.warn()) })
			continue
		}
		crash.Go(func() {
			network, addr := target(f.ConnectHost, f.ConnectPort)
			r, err := h.Client.Dial(network, addr)
			if err != nil {
				fmt.Fprintf(h.warn(), "rssh: %s: %v\n", f, err)
				c.Close()
				return
			}
			relay(c, r)
		})
	}
}

func (h *SSHHandler) acceptRemote(l net.Listener, f Forward) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if f.RemoteDynamic() {
			// A remote dynamic forward: SOCKS served here.
			crash.Go(func() { sshproxy.ServeRemoteSOCKS(c, h.PermitRemoteOpen, h.log(), h.warn()) })
			continue
		}
		crash.Go(func() {
			var d net.Dialer
			network, addr := target(f.ConnectHost, f.ConnectPort)
			r, err := d.Dial(network, addr)
			if err != nil {
				fmt.Fprintf(h.warn(), "rssh: %s: %v\n", f, err)
				c.Close()
				return
			}
			relay(c, r)
		})
	}
}

// relay copies both ways, passing each side's EOF on as a half close.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	crash.Go(func() { defer wg.Done(); cp(a, b) })
	cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
