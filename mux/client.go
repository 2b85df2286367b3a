//go:build unix

package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ExitFailure is the status of a session that ended without one, as ssh.
const ExitFailure = 255

var (
	// ErrNoExitStatus is a session whose master closed the control
	// connection without an exit message: the master died, or the remote
	// command died by a signal. The client exits 255, as ssh does.
	ErrNoExitStatus = errors.New("control master terminated without an exit status")
)

// RefusedError is a master's PERMISSION_DENIED or FAILURE reply.
type RefusedError struct {
	Denied bool   // PERMISSION_DENIED (ControlMaster ask said no), else FAILURE
	Reason string // the master's words
}

func (e *RefusedError) Error() string {
	if e.Denied {
		return "master refused the request: " + e.Reason
	}
	return "request failed: " + e.Reason
}

// Client is one connection to a master's control socket. A Client runs
// at most one session or stdio forward; its other requests (alive check,
// forwards, terminate, stop) may come before.
type Client struct {
	conn       *net.UnixConn
	next       uint32
	pid        uint32
	Extensions [][2]string // what the master's HELLO offered
	closeOnce  sync.Once
}

// Dial connects to the master at path and exchanges HELLO, waiting at
// most timeout for the master's (zero waits as long as it takes, as ssh
// without ConnectTimeout). ENOENT is ErrNoMaster and ECONNREFUSED is
// ErrStale, both as *PathError: the caller connects directly instead. A
// stale socket is not removed here; that is the job of the master that
// will take its place (RemoveStale).
func Dial(path string, timeout time.Duration) (*Client, error) {
	if len(path) >= sunPathLen {
		return nil, tooLong(path, sunPathLen)
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		var errno syscall.Errno
		errors.As(err, &errno)
		switch errno {
		case syscall.ENOENT:
			return nil, &PathError{Path: path, Err: ErrNoMaster, Msg: fmt.Sprintf("Control socket \"%s\" does not exist", path)}
		case syscall.ECONNREFUSED:
			return nil, &PathError{Path: path, Err: ErrStale, Msg: fmt.Sprintf("Stale control socket %s", path)}
		}
		return nil, &PathError{Path: path, Err: err, Msg: fmt.Sprintf("Control socket connect(%s): %v", path, errnoText(err))}
	}
	cl := &Client{conn: c}
	if timeout > 0 {
		c.SetDeadline(time.Now().Add(timeout))
	}
	if err := cl.hello(); err != nil {
		c.Close()
		return nil, fmt.Errorf("master hello exchange failed: %w", err)
	}
	c.SetDeadline(time.Time{})
	return cl, nil
}

func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

func (c *Client) hello() error {
	if err := writePacket(c.conn, encodeHello()); err != nil {
		return err
	}
	b, err := readPacket(c.conn)
	if err != nil {
		return err
	}
	r, err := DecodeReply(b)
	if err != nil {
		return err
	}
	if r.Type != msgHello {
		return fmt.Errorf("expected HELLO (%d) got %d", msgHello, r.Type)
	}
	if r.Hello.Version != Version {
		return fmt.Errorf("Unsupported multiplexing protocol version %d (expected %d)", r.Hello.Version, Version)
	}
	c.Extensions = r.Hello.Extensions
	return nil
}

// Extension is the value of the master's HELLO extension name, and
// whether it offered one.
func (c *Client) Extension(name string) (string, bool) {
	for _, e := range c.Extensions {
		if e[0] == name {
			return e[1], true
		}
	}
	return "", false
}

// Close closes the control connection.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() { err = c.conn.Close() })
	return err
}

// read reads the master's next message.
func (c *Client) read() (*Reply, error) {
	b, err := readPacket(c.conn)
	if err != nil {
		return nil, err
	}
	return DecodeReply(b)
}

// call sends a request and reads its reply, checking the request id.
func (c *Client) call(b []byte) (*Reply, error) {
	if err := writePacket(c.conn, b); err != nil {
		return nil, err
	}
	r, err := c.read()
	if err != nil {
		return nil, err
	}
	if err := c.check(r); err != nil {
		return r, err
	}
	return r, nil
}

func (c *Client) check(r *Reply) error {
	if r.ID != c.next {
		return fmt.Errorf("out of sequence reply: my id %d theirs %d", c.next, r.ID)
	}
	c.next++
	switch r.Type {
	case sPermissionDenied:
		return &RefusedError{Denied: true, Reason: r.Reason}
	case sFailure:
		return &RefusedError{Reason: r.Reason}
	}
	return nil
}

func unexpected(r *Reply) error {
	if r.Reason != "" {
		return fmt.Errorf("master returned error: %s", r.Reason)
	}
	return fmt.Errorf("unexpected response from master 0x%08x", r.Type)
}

// AliveCheck asks the master for its pid (ssh -O check).
func (c *Client) AliveCheck() (int, error) {
	r, err := c.call(msg(cAliveCheck).u32(c.next).b)
	if err != nil {
		return 0, err
	}
	if r.Type != sAlive {
		return 0, unexpected(r)
	}
	c.pid = r.Value
	return int(r.Value), nil
}

// Terminate asks the master to exit (ssh -O exit), then waits (at most
// wait) until it closes the control connection, so a connection made
// after Terminate returns no longer finds it. A master that exits before
// its reply arrives is a success, as for ssh.
func (c *Client) Terminate(wait time.Duration) error {
	if err := writePacket(c.conn, msg(cTerminate).u32(c.next).b); err != nil {
		return err
	}
	r, err := c.read()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return nil
		}
		return fmt.Errorf("read from master failed: %w", err)
	}
	if err := c.check(r); err != nil {
		return err
	}
	if r.Type != sOK {
		return unexpected(r)
	}
	c.conn.SetReadDeadline(time.Now().Add(wait))
	io.Copy(io.Discard, c.conn)
	return nil
}

// StopListening asks the master to stop accepting clients and remove its
// socket; its sessions carry on (ssh -O stop).
func (c *Client) StopListening() error {
	r, err := c.call(msg(cStopListening).u32(c.next).b)
	if err != nil {
		return err
	}
	if r.Type != sOK {
		return unexpected(r)
	}
	return nil
}

// OpenForward asks the master for a forward (ssh -O forward, or -L/-R/-D
// with a master). For a remote forward of port 0 it returns the port the
// server allocated; otherwise 0.
func (c *Client) OpenForward(f Forward) (int, error) {
	r, err := c.call(encodeForward(cOpenFwd, c.next, f))
	if err != nil {
		return 0, err
	}
	switch r.Type {
	case sOK:
		return 0, nil
	case sRemotePort:
		return int(r.Value), nil
	}
	return 0, unexpected(r)
}

// CloseForward cancels a forward (ssh -O cancel).
func (c *Client) CloseForward(f Forward) error {
	r, err := c.call(encodeForward(cCloseFwd, c.next, f))
	if err != nil {
		return err
	}
	if r.Type != sOK {
		return unexpected(r)
	}
	return nil
}

// SessionOptions are the client side of a passenger session.
type SessionOptions struct {
	Stdin, Stdout, Stderr *os.File // passed to the master, which drives them
	// Opened is called once the master has opened the session (a PTY
	// session puts the local terminal in raw mode here).
	Opened func()
	// TTYFailed is called when the master says the remote refused the
	// pseudo-terminal (the terminal goes back to cooked mode).
	TTYFailed func()
}

// Session runs a passenger session (MUX_C_NEW_SESSION) and returns the
// remote exit status as ssh exits: the command's, or 255 with
// ErrNoExitStatus when the control connection closes without one (the
// master died), or 255 with ctx's error when ctx ends first (a signal).
// For a PTY session, SIGWINCH is relayed to the master's pid, as ssh does.
func (c *Client) Session(ctx context.Context, req SessionRequest, o SessionOptions) (int, error) {
	if c.pid == 0 {
		if _, err := c.AliveCheck(); err != nil {
			return ExitFailure, fmt.Errorf("master alive request failed: %w", err)
		}
	}
	req.ID = c.next
	if err := writePacket(c.conn, encodeSession(&req)); err != nil {
		return ExitFailure, err
	}
	for _, f := range []*os.File{o.Stdin, o.Stdout, o.Stderr} {
		if err := sendFd(c.conn, int(f.Fd())); err != nil {
			return ExitFailure, fmt.Errorf("send fds failed: %w", err)
		}
	}
	r, err := c.read()
	if err != nil {
		return ExitFailure, fmt.Errorf("read from master failed: %w", err)
	}
	if err := c.check(r); err != nil {
		return ExitFailure, err
	}
	if r.Type != sSessionOpened {
		return ExitFailure, unexpected(r)
	}
	sid := r.Value
	if o.Opened != nil {
		o.Opened()
	}
	stop := c.watch(ctx, req.TTY)
	defer stop()
	status, seen := uint32(ExitFailure), false
	for {
		r, err := c.read()
		if err != nil {
			break
		}
		switch r.Type {
		case sTTYAllocFail:
			if r.ID != sid {
				return ExitFailure, fmt.Errorf("tty alloc fail on unknown session: my id %d theirs %d", sid, r.ID)
			}
			if o.TTYFailed != nil {
				o.TTYFailed()
			}
		case sExitMessage:
			if r.ID != sid {
				return ExitFailure, fmt.Errorf("exit on unknown session: my id %d theirs %d", sid, r.ID)
			}
			if seen {
				return ExitFailure, errors.New("exitval sent twice")
			}
			status, seen = r.Value, true
		default:
			return ExitFailure, unexpected(r)
		}
	}
	c.Close()
	if ctx.Err() != nil {
		return ExitFailure, ctx.Err()
	}
	if !seen {
		return ExitFailure, ErrNoExitStatus
	}
	return int(status), nil
}

// watch closes the connection when ctx ends and, for a PTY session,
// relays SIGWINCH to the master. The returned func stops both.
func (c *Client) watch(ctx context.Context, tty bool) func() {
	done := make(chan struct{})
	var winch chan os.Signal
	if tty && c.pid > 1 {
		winch = make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				c.Close()
				return
			case <-winch:
				unix.Kill(int(c.pid), unix.SIGWINCH)
			case <-done:
				return
			}
		}
	}()
	return func() {
		if winch != nil {
			signal.Stop(winch)
		}
		close(done)
	}
}

// StdioForward relays stdin and stdout to host:port through the master
// (MUX_C_NEW_STDIO_FWD, ssh -W). A port of PortStreamLocal makes host a
// Unix socket path on the server. It returns when the master closes the
// control connection (the forward ended) or ctx ends.
func (c *Client) StdioForward(ctx context.Context, host string, port uint32, stdin, stdout *os.File) error {
	if err := c.openStdio(host, port, stdin, stdout); err != nil {
		return err
	}
	stop := c.watch(ctx, false)
	defer stop()
	r, err := c.read()
	c.Close()
	if err == nil {
		return fmt.Errorf("master returned unexpected message %d", r.Type)
	}
	return ctx.Err()
}

// openStdio sends NEW_STDIO_FWD with stdin and stdout and waits until
// the master says the forward is open.
func (c *Client) openStdio(host string, port uint32, stdin, stdout *os.File) error {
	if c.pid == 0 {
		if _, err := c.AliveCheck(); err != nil {
			return fmt.Errorf("master alive request failed: %w", err)
		}
	}
	if err := writePacket(c.conn, encodeStdio(&StdioRequest{ID: c.next, Host: host, Port: port})); err != nil {
		return err
	}
	for _, f := range []*os.File{stdin, stdout} {
		if err := sendFd(c.conn, int(f.Fd())); err != nil {
			return fmt.Errorf("send fds failed: %w", err)
		}
	}
	r, err := c.read()
	if err != nil {
		return fmt.Errorf("read from master failed: %w", err)
	}
	if err := c.check(r); err != nil {
		return err
	}
	if r.Type != sSessionOpened {
		return unexpected(r)
	}
	return nil
}
