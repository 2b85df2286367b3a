// Package sshproxy is rssh's SSH client: it dials a resolved destination
// (directly, through a ProxyJump chain or a ProxyCommand), verifies the host
// key against known_hosts, authenticates with the agent and identity files,
// and runs sessions with OpenSSH's exit-status rules.
//
// It knows nothing of where tokens come from: callers hand it environment
// variables to send once the host has proved its identity.
package sshproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"

	"github.com/rssh/rssh/internal/crash"
)

// Resolver resolves the configuration of a ProxyJump hop; each hop is
// resolved with its own config, as OpenSSH's ssh -W child would.
type Resolver func(host, user string, port int) (*config.Config, error)

// Client is the dependencies of one rssh invocation.
type Client struct {
	Resolve Resolver
	Log     *slog.Logger
	Prompt  Prompter // nil means no terminal: nothing can be asked
	Getenv  func(string) string
	Stderr  io.Writer // ProxyCommand's stderr and warnings
	// HopMux, when set, is asked for each hop of a ProxyJump chain, last
	// first, for a stream to the next host through a live
	// connection-sharing master of that hop (see HopMux).
	HopMux HopMux

	// Predialed is a TCP connection to the destination that the rssh which
	// started this one (a ControlPersist master) made while this process
	// was starting: Dial takes it, once, instead of connecting itself.
	Predialed net.Conn
}

// HopMux offers a byte stream to host:port through a live master
// (ControlMaster) serving hop — what OpenSSH's ProxyJump gets when its
// `ssh -W host:port hop` child finds one at the hop's ControlPath. ok is
// false when there is none to use (no socket, a stale one, a master that
// refuses the forward): the hop is then dialed as usual.
type HopMux func(ctx context.Context, hop *config.Config, host string, port int) (conn net.Conn, ok bool)

// Conn is an authenticated connection and whatever carries it.
type Conn struct {
	*ssh.Client
	Config  *config.Config
	closers []io.Closer

	done     chan struct{} // closed when the transport has ended
	waitErr  error         // why, once done is closed
	closing  atomic.Bool   // we closed it
	timedOut atomic.Bool   // keepalive gave up on the server
	closeMu  sync.Once

	chans openChannels   // what ~# lists
	rfwd  remoteForwards // where the server's forwarded channels go

	kex    *kexTap // the first key exchange, for agent session-bind
	kexLog *slog.Logger

	hostKeys *hostKeyUpdate // UpdateHostKeys; nil for a Conn made in tests
}

// NewConn wraps a client connection made elsewhere (a mux master's proxy
// mode, which has no transport of its own here) for cfg's session.
func NewConn(c *ssh.Client, cfg *config.Config) *Conn { return newConn(c, cfg) }

func newConn(c *ssh.Client, cfg *config.Config) *Conn {
	conn := &Conn{Client: c, Config: cfg, done: make(chan struct{})}
	crash.Go(func() {
		conn.waitErr = c.Wait()
		close(conn.done)
	})
	return conn
}

// Close closes the connection and the hops or proxy command under it.
func (c *Conn) Close() error {
	// An UpdateHostKeys proof under way is answered at once: let it land.
	c.hostKeys.wait(hostKeysWait)
	c.closing.Store(true)
	return c.shutdown()
}

func (c *Conn) shutdown() error {
	var err error
	c.closeMu.Do(func() {
		err = c.Client.Close()
		for i := len(c.closers) - 1; i >= 0; i-- {
			c.closers[i].Close()
		}
	})
	return err
}

// Done is closed when the connection has ended, whoever ended it.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Lost says why the connection ended when it was not closed by rssh: a
// keepalive timeout or the transport failing. It is nil while the
// connection is up, or if it does not end within grace; a session whose
// channel closed without an exit status uses the grace to learn whether the
// whole connection went with it.
func (c *Conn) Lost(grace time.Duration) error {
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			return nil
		}
	} else {
		select {
		case <-c.done:
		default:
			return nil
		}
	}
	switch {
	case c.timedOut.Load():
		return &TimeoutError{Host: c.Config.Hostname}
	case c.closing.Load():
		return nil
	}
	return &LostError{Host: c.Config.Hostname, Port: c.Config.Port, Err: c.waitErr}
}

// TimeoutError is a server that stopped answering keepalives; the text is
// OpenSSH's.
type TimeoutError struct{ Host string }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("Timeout, server %s not responding.", e.Host)
}

// LostError is a connection that ended under a running session.
type LostError struct {
	Host string
	Port int
	Err  error
}

func (e *LostError) Error() string {
	why := "closed by remote host"
	if e.Err != nil && !errors.Is(e.Err, io.EOF) {
		why = unwrapOp(e.Err).Error()
	}
	return fmt.Sprintf("connection to %s port %d lost: %s", e.Host, e.Port, why)
}

func (e *LostError) Unwrap() error { return e.Err }

// Dial connects and authenticates to cfg's destination.
func (cl *Client) Dial(ctx context.Context, cfg *config.Config) (*Conn, error) {
	var closers []io.Closer
	fail := func(err error) (*Conn, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
		return nil, err
	}
	var conn net.Conn
	var err error
	switch {
	case cfg.ProxyJump != "":
		// The stream's Close closes the hops under it.
		conn, err = cl.jumpStream(ctx, cfg)
		if err != nil {
			return fail(err)
		}
	case cfg.ProxyCommand != "":
		conn, err = cl.proxyCommand(cfg)
		if err != nil {
			return fail(err)
		}
	case cl.Predialed != nil:
		conn, cl.Predialed = cl.Predialed, nil
		cl.Log.Debug(fmt.Sprintf("Connection to %s port %d made by the rssh that started this master", cfg.Hostname, cfg.Port))
	default:
		conn, err = dialTCP(ctx, cfg, cl.Log)
		if err != nil {
			return fail(err)
		}
	}
	c, err := cl.handshake(ctx, conn, cfg)
	if err != nil {
		conn.Close()
		return fail(err)
	}
	c.closers = closers
	return c, nil
}

// jumpStream opens a byte stream to cfg.Hostname:cfg.Port through every
// hop of cfg.ProxyJump, each hop resolved with its own configuration and
// carried by the one before; closing the stream closes the hops.
//
// As OpenSSH, where each hop is an `ssh -W next hop` child that first
// tries the hop's ControlPath, the last hop with a live master (HopMux)
// carries the stream to the host after it, and the hops before it are
// not dialed at all.
func (cl *Client) jumpStream(ctx context.Context, cfg *config.Config) (net.Conn, error) {
	jumps, err := config.ParseProxyJump(cfg.ProxyJump)
	if err != nil {
		return nil, err
	}
	hops := make([]*config.Config, len(jumps))
	for i, j := range jumps {
		hc, err := cl.Resolve(j.Host, j.User, j.Port)
		if err != nil {
			return nil, err
		}
		// A hop's own ProxyJump is ignored inside a chain, as in OpenSSH,
		// where the chain is flattened into one list.
		hc.ProxyJump = ""
		hops[i] = hc
	}
	// after(i) is the host hop i opens a stream to.
	after := func(i int) *config.Config {
		if i+1 < len(hops) {
			return hops[i+1]
		}
		return cfg
	}
	start := 0
	var stream net.Conn
	for i := len(hops) - 1; i >= 0 && cl.HopMux != nil; i-- {
		next := after(i)
		if s, ok := cl.HopMux(ctx, hops[i], next.Hostname, next.Port); ok {
			stream, start = s, i+1
			break
		}
	}
	var prev *Conn
	for i := start; i < len(hops); i++ {
		hc := hops[i]
		var c *Conn
		switch {
		case stream != nil:
			c, err = cl.handshake(ctx, stream, hc)
			if err != nil {
				stream.Close()
			}
			stream = nil
		case prev == nil:
			c, err = cl.Dial(ctx, hc)
		default:
			c, err = cl.dialVia(ctx, prev, hc)
		}
		if err != nil {
			if prev != nil {
				prev.Close()
			}
			return nil, err
		}
		prev = c
	}
	if prev == nil {
		// The last hop's master carries the stream to the destination.
		return stream, nil
	}
	target := net.JoinHostPort(cfg.Hostname, strconv.Itoa(cfg.Port))
	cl.Log.Debug("opening direct-tcpip channel", "via", prev.Config.Host, "target", target)
	c, err := prev.Client.DialContext(ctx, "tcp", target)
	if err != nil {
		prev.Close()
		return nil, fmt.Errorf("jump host %s could not open %s: %w", prev.Config.Host, target, err)
	}
	return &hopStream{Conn: c, hop: prev}, nil
}

func (cl *Client) dialVia(ctx context.Context, via *Conn, cfg *config.Config) (*Conn, error) {
	target := net.JoinHostPort(cfg.Hostname, strconv.Itoa(cfg.Port))
	conn, err := via.Client.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("jump host %s could not open %s: %w", via.Config.Host, target, err)
	}
	c, err := cl.handshake(ctx, conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.closers = []io.Closer{via}
	return c, nil
}

// DialTCP connects to cfg's destination as Dial does when there is no
// ProxyJump or ProxyCommand (AddressFamily, BindAddress, BindInterface,
// ConnectTimeout, ConnectionAttempts), with ssh's error words.
func DialTCP(ctx context.Context, cfg *config.Config, log *slog.Logger) (net.Conn, error) {
	return dialTCP(ctx, cfg, log)
}

func dialTCP(ctx context.Context, cfg *config.Config, log *slog.Logger) (net.Conn, error) {
	network := "tcp"
	switch cfg.AddressFamily {
	case "inet":
		network = "tcp4"
	case "inet6":
		network = "tcp6"
	}
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	if cfg.TCPKeepAlive {
		d.KeepAlive = 15 * time.Second
	} else {
		d.KeepAlive = -1
	}
	if cfg.BindAddress != "" {
		// As ssh, a name is resolved and one that does not resolve fails
		// the connection rather than being ignored.
		ip := net.ParseIP(cfg.BindAddress)
		if ip == nil {
			a, err := net.DefaultResolver.LookupIPAddr(ctx, cfg.BindAddress)
			if err == nil && len(a) == 0 {
				err = errors.New("no address")
			}
			if err != nil {
				return nil, fmt.Errorf("connect to host %s port %d: bind address %s: %w", cfg.Hostname, cfg.Port, cfg.BindAddress, unwrapOp(err))
			}
			ip = a[0].IP
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	} else if cfg.BindInterface != "" {
		ip, err := interfaceAddr(cfg.BindInterface, network, cfg.Hostname)
		if err != nil {
			return nil, fmt.Errorf("connect to host %s port %d: %w", cfg.Hostname, cfg.Port, err)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	addr := net.JoinHostPort(cfg.Hostname, strconv.Itoa(cfg.Port))
	attempts := max(cfg.ConnectionAttempts, 1)
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			// OpenSSH waits a second between attempts.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		log.Debug("connecting", "addr", addr, "attempt", i+1)
		var c net.Conn
		c, err = d.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		if dns := new(net.DNSError); errors.As(err, &dns) {
			// ssh resolves once, before its connection attempts, and
			// words the failure as getaddrinfo(3) does.
			return nil, &resolveError{host: cfg.Hostname, err: dns}
		}
	}
	return nil, fmt.Errorf("connect to host %s port %d: %w", cfg.Hostname, cfg.Port, unwrapOp(err))
}

// resolveError is a host name that did not resolve, in ssh's words:
// "Could not resolve hostname X: Name or service not known".
type resolveError struct {
	host string
	err  *net.DNSError
}

func (e *resolveError) Error() string {
	why := e.err.Err
	switch {
	case e.err.IsNotFound:
		why = "Name or service not known"
	case e.err.IsTimeout, e.err.IsTemporary:
		why = "Temporary failure in name resolution"
	}
	return fmt.Sprintf("Could not resolve hostname %s: %s", e.host, why)
}

func (e *resolveError) Unwrap() error { return e.err }

// interfaceAddr is the address BindInterface binds to, as ssh's
// check_ifaddrs: one of the interface's, of the destination's family,
// preferring one that is neither loopback nor link-local.
func interfaceAddr(name, network, host string) (net.IP, error) {
	v6 := network == "tcp6"
	if ip := net.ParseIP(host); ip != nil && network == "tcp" {
		v6 = ip.To4() == nil
	}
	noAddr := fmt.Errorf("getifaddrs: %s: no suitable addresses", name)
	ifi, err := net.InterfaceByName(name)
	if err != nil || ifi.Flags&net.FlagUp == 0 {
		return nil, noAddr
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, noAddr
	}
	var local net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || (n.IP.To4() == nil) != v6 {
			continue
		}
		if n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			if local == nil {
				local = n.IP
			}
			continue
		}
		return n.IP, nil
	}
	if local == nil {
		return nil, noAddr
	}
	return local, nil
}

// unwrapOp drops net.OpError's "dial tcp 127.0.0.1:1:" prefix, which repeats
// what rssh's message already says.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			if errno, ok := sys.Err.(syscall.Errno); ok {
				return strerror{errno}
			}
			return sys.Err
		}
		return op.Err
	}
	return err
}

// strerror is an errno in strerror(3)'s words, as ssh prints it:
// "Connection refused" where Go says "connection refused".
type strerror struct{ syscall.Errno }

func (e strerror) Error() string {
	s := e.Errno.Error()
	if s != "" && 'a' <= s[0] && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

func (e strerror) Unwrap() error { return e.Errno }

// proxyCommand runs ProxyCommand with sh -c, as OpenSSH does, and talks SSH
// over its stdin and stdout.
func (cl *Client) proxyCommand(cfg *config.Config) (net.Conn, error) {
	line := cfg.ExpandProxyCommand()
	cl.Log.Debug("executing proxy command", "command", line)
	shell := "/bin/sh"
	if s := cl.Getenv("SHELL"); s != "" {
		shell = s
	}
	cmd := exec.Command(shell, "-c", "exec "+line)
	cmd.Stderr = cl.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proxy command %q: %w", line, err)
	}
	return &cmdConn{cmd: cmd, r: out, w: in}, nil
}

// cmdConn is a net.Conn over a child's stdio. Deadlines are not supported by
// pipes from exec, so the handshake timeout is enforced by closing instead.
type cmdConn struct {
	cmd  *exec.Cmd
	r    io.ReadCloser
	w    io.WriteCloser
	once sync.Once
}

func (c *cmdConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *cmdConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *cmdConn) Close() error {
	c.once.Do(func() {
		c.w.Close()
		c.r.Close()
		// The command may ignore a closed stdin; it must not outlive us.
		done := make(chan struct{})
		crash.Go(func() { c.cmd.Wait(); close(done) })
		select {
		case <-done:
		case <-time.After(time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	})
	return nil
}
func (c *cmdConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *cmdConn) SetDeadline(time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "proxy-command" }

// handshake runs key exchange, host-key verification and authentication over
// conn. ConnectTimeout bounds the whole of it, as in OpenSSH, where it also
// covers the banner exchange.
func (cl *Client) handshake(ctx context.Context, conn net.Conn, cfg *config.Config) (*Conn, error) {
	tap := newKexTap(conn)
	upd := cl.newHostKeyUpdate(cfg)
	cc, cleanup, err := cl.clientConfig(cfg, tap, upd)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	afterKex := cl.warnWeakKex(cc, cfg)
	addr := net.JoinHostPort(cfg.Hostname, strconv.Itoa(cfg.Port))
	var stop func() bool
	if cfg.ConnectTimeout > 0 {
		timer := time.AfterFunc(cfg.ConnectTimeout, func() { conn.Close() })
		stop = timer.Stop
	}
	type result struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	done := make(chan result, 1)
	crash.Go(func() {
		c, chans, reqs, err := ssh.NewClientConn(tap, addr, cc)
		done <- result{c, chans, reqs, err}
	})
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		conn.Close()
		r = <-done
		if r.err == nil {
			r.c.Close()
		}
		return nil, ctx.Err()
	}
	if stop != nil && !stop() {
		// The timer fired: whatever the handshake returned, the conn is closed.
		if r.err == nil {
			r.c.Close()
		}
		return nil, fmt.Errorf("connection to %s port %d timed out during banner exchange", cfg.Hostname, cfg.Port)
	}
	if r.err != nil {
		return nil, classifyHandshakeError(r.err, cfg)
	}
	afterKex(r.c)
	c := newConn(ssh.NewClient(r.c, r.chans, upd.filter(r.c, r.reqs)), cfg)
	c.kex, c.kexLog = tap, cl.Log
	c.hostKeys = upd
	return c, nil
}
