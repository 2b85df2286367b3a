package sshproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/crash"
)

// ExitFailure is what ssh exits with when it, or the connection, fails, or
// when the remote side ends without an exit status (a death by signal).
const ExitFailure = 255

// EnvVar is a variable sent with a session "env" request before the command
// starts. Value is bytes so that a secret never becomes an unwipeable string
// on rssh's side.
type EnvVar struct {
	Name  string
	Value []byte
	// Confirm asks the server to reply; a refusal is then reported to
	// Session.Refused instead of being dropped silently as OpenSSH drops it.
	Confirm bool
}

// Session describes one exec (or shell) session.
type Session struct {
	Command   string // empty runs the login shell
	Subsystem bool   // Command names a subsystem (-s)
	Env       []EnvVar
	Stdin     io.Reader // nil means no input: EOF is sent at once (-n)
	Stdout    io.Writer
	Stderr    io.Writer
	// Refused is called for each Confirm variable the server refused, before
	// the command starts; an error stops the session there.
	Refused func(name string) error

	// PTY, when set, asks for a pseudo-terminal: the session is
	// interactive, the local terminal goes raw while it runs, and escape
	// sequences are read from Stdin.
	PTY *PTY
	// ForwardAgent asks the server for agent forwarding on this session
	// (Conn.ServeAgent answers the channels). A refusal is a warning.
	ForwardAgent bool
}

// PTY is the pseudo-terminal a session asks for.
type PTY struct {
	Term     string
	Terminal *Terminal // the local terminal: modes, size, raw mode, SIGWINCH
	// EscapeChar is the escape character (~ by default) or EscapeNone.
	EscapeChar int
	// CommandLine enables ~C (EnableEscapeCommandline), which adds to and
	// cancels Forwarding's forwards; it needs Forwarding.
	CommandLine bool
	Forwarding  *Forwarding
	// Verbosity is what ~v (more) and ~V (less) step, returning the new
	// LogLevel's name as ssh -G prints it; nil when the log does not go
	// to the terminal (-E), which those escapes then say.
	Verbosity func(more bool) string
}

// Run runs s on the connection and returns the remote exit status as ssh
// would exit: the command's status, or 255 when the session ends without
// one (the command died by a signal, the user typed ~., or the connection
// was lost, which is the error). When ctx ends (a local signal), the
// session is abandoned and Run returns 255 and ctx's error.
func (c *Conn) Run(ctx context.Context, s Session) (int, error) {
	if s.Subsystem {
		return c.runSubsystem(ctx, s)
	}
	sess, err := c.NewSession()
	if err != nil {
		if lost := c.Lost(time.Second); lost != nil {
			return ExitFailure, lost
		}
		return ExitFailure, fmt.Errorf("opening a session: %w", err)
	}
	defer sess.Close()
	defer c.track("session", "client-session").close()
	if err := sendSetup(sess, s); err != nil {
		return ExitFailure, err
	}
	var term *Terminal
	if s.PTY != nil {
		term = s.PTY.Terminal
		size := term.Size()
		// RequestPty takes the height first.
		if err := sess.RequestPty(s.PTY.Term, size.Height, size.Width, term.Modes()); err != nil {
			// As OpenSSH: the session goes on without a terminal.
			fmt.Fprintln(s.Stderr, "rssh: warning: the server refused a pseudo-terminal")
			term = nil
		}
	}

	stdin, err := sess.StdinPipe()
	if err != nil {
		return ExitFailure, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return ExitFailure, err
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		return ExitFailure, err
	}
	// The ~C command line holds remote output back while it is open.
	var hold sync.Mutex
	var outputs sync.WaitGroup
	outputs.Add(2)
	crash.Go(func() { defer outputs.Done(); io.Copy(heldWriter{&hold, s.Stdout}, stdout) })
	crash.Go(func() { defer outputs.Done(); io.Copy(heldWriter{&hold, s.Stderr}, stderr) })

	switch {
	case s.Command == "":
		err = sess.Shell()
	default:
		err = sess.Start(s.Command)
	}
	if err != nil {
		if lost := c.Lost(time.Second); lost != nil {
			return ExitFailure, lost
		}
		return ExitFailure, fmt.Errorf("starting the remote command: %w", err)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	disconnect := make(chan struct{})
	if term != nil {
		term.MakeRaw()
		defer term.Restore()
		crash.Go(func() {
			for ws := range term.WatchSize(runCtx) {
				sess.WindowChange(ws.Height, ws.Width)
			}
		})
		esc := s.PTY.EscapeChar
		if esc == EscapeNone || s.Stdin == nil {
			crash.Go(func() { pumpStdin(s.Stdin, stdin) })
		} else {
			cmdline := s.PTY.CommandLine && s.PTY.Forwarding != nil
			f := newEscapeFilter(byte(esc), cmdline, s.Stderr)
			e := &escapes{c: c, sess: sess, pty: s.PTY, msg: s.Stderr, hold: &hold, disconnect: disconnect}
			crash.Go(func() { pumpEscaped(s.Stdin, stdin, f, e.do) })
		}
	} else {
		// Our own stdin loop, not Session.Stdin: Wait would otherwise block
		// on a reader (a terminal, say) that never reaches EOF after the
		// remote exits.
		crash.Go(func() { pumpStdin(s.Stdin, stdin) })
	}

	waited := make(chan error, 1)
	crash.Go(func() {
		err := sess.Wait()
		outputs.Wait()
		waited <- err
	})
	select {
	case err = <-waited:
	case <-disconnect:
		return ExitFailure, nil
	case <-ctx.Done():
		return ExitFailure, ctx.Err()
	}
	var exit *ssh.ExitError
	if err != nil && !errors.As(err, &exit) {
		// The channel closed with no status: was it the whole connection
		// that went? The transport ends just after its channels do.
		if lost := c.Lost(250 * time.Millisecond); lost != nil {
			return ExitFailure, lost
		}
	}
	return exitStatus(err)
}

// requester is what session setup is sent on: an x/crypto Session, or the
// bare channel of a subsystem session.
type requester interface {
	SendRequest(name string, wantReply bool, payload []byte) (bool, error)
}

// sendSetup sends s's environment (the token included) and the agent
// forwarding request, before the session's command starts.
func sendSetup(r requester, s Session) error {
	for _, v := range s.Env {
		payload := envPayload(v.Name, v.Value)
		// As OpenSSH, no reply is asked for ordinary variables: a server that
		// does not accept the name drops it silently.
		ok, err := r.SendRequest("env", v.Confirm, payload)
		clear(payload)
		if err != nil {
			return fmt.Errorf("sending %s: %w", v.Name, err)
		}
		if v.Confirm && !ok && s.Refused != nil {
			if err := s.Refused(v.Name); err != nil {
				return err
			}
		}
	}
	if s.ForwardAgent {
		ok, err := r.SendRequest("auth-agent-req@openssh.com", true, nil)
		if err != nil {
			return fmt.Errorf("requesting agent forwarding: %w", err)
		}
		if !ok {
			fmt.Fprintln(s.Stderr, "rssh: warning: the server refused agent forwarding")
		}
	}
	return nil
}

// envPayload is the "env" request body (RFC 4254 6.4), built by hand so
// the value is copied only into a buffer rssh wipes after sending.
func envPayload(name string, value []byte) []byte {
	b := make([]byte, 0, 8+len(name)+len(value))
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

func pumpStdin(r io.Reader, w io.WriteCloser) {
	if r != nil {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
	}
	w.Close() // sends EOF
}

// pumpEscaped is pumpStdin through the escape filter; act handles an
// escape's action and says whether to go on reading.
func pumpEscaped(r io.Reader, w io.WriteCloser, f *escapeFilter, act func(escapeAction) bool) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		in := buf[:n]
		for len(in) > 0 {
			out, a, rest := f.filter(in)
			if len(out) > 0 {
				if _, werr := w.Write(out); werr != nil {
					return
				}
			}
			if a != escNone && !act(a) {
				return
			}
			in = rest
		}
		if err != nil {
			break
		}
	}
	w.Close()
}

// WantTTY decides whether a session gets a pseudo-terminal, as OpenSSH's
// ssh.c does: RequestTTY yes or force asks for one, and so does auto (and
// yes) with no command; no, or no session (-N), never; and unless forced,
// not when stdin is not a terminal (or is /dev/null, -n), which is worth
// the "Pseudo-terminal will not be allocated" notice when one was wanted.
func WantTTY(requestTTY string, hasCommand, sessionNone, stdinTTY, stdinNull bool) (tty, notice bool) {
	tty = requestTTY == "yes" || requestTTY == "force"
	if !hasCommand {
		tty = requestTTY != "no"
	}
	if requestTTY == "no" || sessionNone {
		tty = false
	}
	if (!stdinTTY || stdinNull) && requestTTY != "force" {
		return false, tty
	}
	return tty, false
}

// PTYNotice is OpenSSH's line for WantTTY's notice.
const PTYNotice = "Pseudo-terminal will not be allocated because stdin is not a terminal."

// exitStatus maps the end of a session to ssh's exit status.
func exitStatus(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		if exit.Signal() != "" {
			// OpenSSH records no status for a remote death by signal and
			// exits 255; it prints nothing about it either.
			return ExitFailure, nil
		}
		return exit.ExitStatus(), nil
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return ExitFailure, nil
	}
	return ExitFailure, fmt.Errorf("session: %w", err)
}

// Forward relays stdin and stdout to host:port through the server (-W),
// with half-close both ways.
func (c *Conn) Forward(host string, port int, stdin io.Reader, stdout io.Writer) error {
	target := net.JoinHostPort(host, strconv.Itoa(port))
	conn, err := c.Dial("tcp", target)
	if err != nil {
		var refused *ssh.OpenChannelError
		if !errors.As(err, &refused) {
			if lost := c.Lost(time.Second); lost != nil {
				return lost
			}
		}
		return fmt.Errorf("stdio forwarding to %s failed: %w", target, openError(err))
	}
	defer conn.Close()
	err = Relay(conn, stdin, stdout)
	if lost := c.Lost(0); lost != nil {
		return lost
	}
	return err
}

// Relay copies stdin to conn and conn to stdout until conn's side ends,
// passing EOF from stdin on as a half-close.
func Relay(conn io.ReadWriteCloser, stdin io.Reader, stdout io.Writer) error {
	crash.Go(func() {
		io.Copy(conn, stdin)
		if hc, ok := conn.(interface{ CloseWrite() error }); ok {
			hc.CloseWrite()
		}
	})
	_, err := io.Copy(stdout, conn)
	return err
}
