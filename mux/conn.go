//go:build unix

package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/crash"
	"github.com/rssh/rssh/sshproxy"
)

// Conn is a connection through a master's control socket, shaped as the
// session flow's Conn (session.Conn): each session, stdio forward and
// forward request is its own control connection, as each ssh -S is.
type Conn struct {
	Path    string
	Timeout time.Duration // for each control connection's HELLO
	// DropEnv names variables never passed to the master (the token:
	// rssh's own master computes and sends it itself).
	DropEnv func(name string) bool

	done      chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	first *Client // a connection already made (Reuse), for the first request
}

// Reuse hands c, a control connection already made (to look at the
// master's HELLO), to the first request, which saves a connection.
func (c *Conn) Reuse(cl *Client) {
	c.mu.Lock()
	c.first = cl
	c.mu.Unlock()
}

// NewConn is a Conn on the master at path.
func NewConn(path string, timeout time.Duration) *Conn {
	return &Conn{Path: path, Timeout: timeout, done: make(chan struct{})}
}

func (c *Conn) dial() (*Client, error) {
	c.mu.Lock()
	cl := c.first
	c.first = nil
	c.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	return Dial(c.Path, c.Timeout)
}

// fileOf returns the descriptor behind r or w when it is an *os.File,
// else a pipe whose other end is pumped (and a func that waits for the
// pump to finish once the session is over).
func readerFile(r io.Reader) (f *os.File, closeLocal func(), err error) {
	if r == nil {
		f, err := os.Open(os.DevNull)
		return f, func() { f.Close() }, err
	}
	if f, ok := r.(*os.File); ok {
		return f, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	crash.Go(func() { io.Copy(pw, r); pw.Close() })
	return pr, func() { pr.Close() }, nil
}

func writerFile(w io.Writer) (f *os.File, wait func(), err error) {
	if f, ok := w.(*os.File); ok {
		return f, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	crash.Go(func() { io.Copy(w, pr); pr.Close(); close(done) })
	return pw, func() { pw.Close(); <-done }, nil
}

// Run runs s through the master. The master drives the descriptors; a
// PTY session puts the local terminal in raw mode while it runs.
func (c *Conn) Run(ctx context.Context, s sshproxy.Session) (int, error) {
	cl, err := c.dial()
	if err != nil {
		return ExitFailure, err
	}
	defer cl.Close()
	req := SessionRequest{Command: s.Command, Subsystem: s.Subsystem, Agent: s.ForwardAgent, EscapeChar: EscapeNone}
	for _, e := range s.Env {
		if c.DropEnv != nil && c.DropEnv(e.Name) {
			continue
		}
		req.Env = append(req.Env, e.Name+"="+string(e.Value))
	}
	var term *sshproxy.Terminal
	if s.PTY != nil {
		req.TTY, req.Term, term = true, s.PTY.Term, s.PTY.Terminal
		if s.PTY.EscapeChar >= 0 && s.PTY.EscapeChar < 256 {
			req.EscapeChar = uint32(s.PTY.EscapeChar)
		}
		defer term.Restore()
	}
	in, closeIn, err := readerFile(s.Stdin)
	if err != nil {
		return ExitFailure, err
	}
	defer closeIn()
	out, waitOut, err := writerFile(s.Stdout)
	if err != nil {
		return ExitFailure, err
	}
	errw, waitErr, err := writerFile(s.Stderr)
	if err != nil {
		waitOut()
		return ExitFailure, err
	}
	status, err := cl.Session(ctx, req, SessionOptions{
		Stdin: in, Stdout: out, Stderr: errw,
		Opened: func() {
			if term != nil {
				term.MakeRaw()
			}
		},
		TTYFailed: func() {
			if term != nil {
				term.Restore()
			}
		},
	})
	waitOut()
	waitErr()
	if errors.Is(err, ErrNoExitStatus) {
		// As ssh: the master went away, or the command died by a
		// signal; 255 and nothing more to say.
		return ExitFailure, nil
	}
	return status, err
}

// Forward relays stdin and stdout to host:port through the master (-W).
func (c *Conn) Forward(host string, port int, stdin io.Reader, stdout io.Writer) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	in, closeIn, err := readerFile(stdin)
	if err != nil {
		return err
	}
	defer closeIn()
	out, waitOut, err := writerFile(stdout)
	if err != nil {
		return err
	}
	defer waitOut()
	return cl.StdioForward(context.Background(), host, uint32(port), in, out)
}

// MuxForward is a forward spec as mux_client_forward sends it.
func MuxForward(kind config.ForwardKind, f config.Forward) Forward {
	m := Forward{Type: FwdLocal, ListenPort: uint32(f.ListenPort), ConnectHost: f.ConnectHost, ConnectPort: uint32(f.ConnectPort)}
	switch {
	case kind == config.RemoteForward:
		m.Type = FwdRemote
	case kind == config.DynamicForward || f.Dynamic():
		m.Type = FwdDynamic
	}
	switch {
	case f.ListenPath != "":
		m.ListenHost, m.ListenPort = f.ListenPath, PortStreamLocal
	case !f.HasListenHost:
		m.ListenHost = ""
	case f.ListenHost == "":
		m.ListenHost = "*"
	default:
		m.ListenHost = f.ListenHost
	}
	switch {
	case f.ConnectPath != "":
		m.ConnectHost, m.ConnectPort = f.ConnectPath, PortStreamLocal
	case m.Type == FwdRemote && f.Dynamic():
		// parse_forward's placeholder target for a remote dynamic
		// forward: a master refuses an empty connect host.
		m.ConnectHost = remoteSOCKS
	}
	return m
}

// remoteSOCKS is the connect host a remote dynamic forward (-R with a
// port alone) carries on the wire, with connect port 0.
const remoteSOCKS = "socks"

// RemoteDynamic reports whether f is a remote dynamic forward: SOCKS
// served by the master for what the server passes on.
func (f Forward) RemoteDynamic() bool {
	return f.Type == FwdRemote && f.ConnectPort == 0 && (f.ConnectHost == remoteSOCKS || f.ConnectHost == "")
}

// StartForwards asks the master for -L, -R and -D. The master owns them,
// so there is no Forwarding to offer ~C.
func (c *Conn) StartForwards(fw sshproxy.Forwards) (*sshproxy.Forwarding, error) {
	var specs []Forward
	for _, g := range []struct {
		kind  config.ForwardKind
		specs []string
	}{{config.LocalForward, fw.Local}, {config.RemoteForward, fw.Remote}, {config.DynamicForward, fw.Dynamic}} {
		for _, spec := range g.specs {
			f, err := config.ParseForward(spec, g.kind)
			if err != nil {
				return nil, err
			}
			specs = append(specs, MuxForward(g.kind, f))
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	cl, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var failed []string
	for _, f := range specs {
		// As ssh through a master: an allocated port is said only at -v.
		port, err := cl.OpenForward(f)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		if port != 0 && fw.Log != nil {
			fw.Log.Debug(fmt.Sprintf("Allocated port %d for remote forward to %s:%d", port, f.ConnectHost, f.ConnectPort))
		}
	}
	if len(failed) > 0 {
		err := fmt.Errorf("master forward request failed: %s", strings.Join(failed, "; "))
		if fw.ExitOnFailure {
			return nil, err
		}
		if fw.Warn != nil {
			fmt.Fprintf(fw.Warn, "rssh: warning: %v\n", err)
		}
	}
	return nil, nil
}

// ServeAgent: the master forwards the agent (the session asks for it).
func (c *Conn) ServeAgent(string) {}

// KeepAlive: the master keeps its connection alive.
func (c *Conn) KeepAlive(time.Duration, int) {}

// Done is closed by Close.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Lost: a session through a master that died ends with 255 and no more.
func (c *Conn) Lost(time.Duration) error { return nil }

// Close ends what this Conn holds (nothing outlives its requests).
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	c.mu.Lock()
	if c.first != nil {
		c.first.Close()
		c.first = nil
	}
	c.mu.Unlock()
	return nil
}

// Spec is f as a -L, -R or -D argument, and its kind: what a master that
// starts forwards from specs (rssh's) needs.
func (f Forward) Spec() (config.ForwardKind, string) {
	hostPort := func(host string, port uint32) string {
		if port == PortStreamLocal {
			return host
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if host == "" {
			return strconv.Itoa(int(port))
		}
		return host + ":" + strconv.Itoa(int(port))
	}
	listen := hostPort(f.ListenHost, f.ListenPort)
	switch f.Type {
	case FwdDynamic:
		return config.DynamicForward, listen
	case FwdRemote:
		if f.RemoteDynamic() {
			return config.RemoteForward, listen
		}
		return config.RemoteForward, listen + ":" + hostPort(f.ConnectHost, f.ConnectPort)
	}
	return config.LocalForward, listen + ":" + hostPort(f.ConnectHost, f.ConnectPort)
}
