package sshproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"
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
}

// Run runs s on the connection and returns the remote exit status as ssh
// would exit: the command's status, or 255 when the session ends without
// one (the command died by a signal, or the channel was torn down).
func (c *Conn) Run(s Session) (int, error) {
	sess, err := c.NewSession()
	if err != nil {
		return ExitFailure, fmt.Errorf("opening a session: %w", err)
	}
	defer sess.Close()
	for _, v := range s.Env {
		payload := envPayload(v.Name, v.Value)
		// As OpenSSH, no reply is asked for ordinary variables: a server that
		// does not accept the name drops it silently.
		ok, err := sess.SendRequest("env", v.Confirm, payload)
		clear(payload)
		if err != nil {
			return ExitFailure, fmt.Errorf("sending %s: %w", v.Name, err)
		}
		if v.Confirm && !ok && s.Refused != nil {
			if err := s.Refused(v.Name); err != nil {
				return ExitFailure, err
			}
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
	var outputs sync.WaitGroup
	outputs.Add(2)
	go func() { defer outputs.Done(); io.Copy(s.Stdout, stdout) }()
	go func() { defer outputs.Done(); io.Copy(s.Stderr, stderr) }()

	switch {
	case s.Subsystem:
		err = sess.RequestSubsystem(s.Command)
	case s.Command == "":
		err = sess.Shell()
	default:
		err = sess.Start(s.Command)
	}
	if err != nil {
		return ExitFailure, fmt.Errorf("starting the remote command: %w", err)
	}
	// Our own stdin loop, not Session.Stdin: Wait would otherwise block on a
	// reader (a terminal, say) that never reaches EOF after the remote exits.
	go pumpStdin(s.Stdin, stdin)

	err = sess.Wait()
	outputs.Wait()
	return exitStatus(err)
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
		return fmt.Errorf("stdio forwarding to %s failed: %w", target, err)
	}
	defer conn.Close()
	return Relay(conn, stdin, stdout)
}

// Relay copies stdin to conn and conn to stdout until conn's side ends,
// passing EOF from stdin on as a half-close.
func Relay(conn io.ReadWriteCloser, stdin io.Reader, stdout io.Writer) error {
	go func() {
		io.Copy(conn, stdin)
		if hc, ok := conn.(interface{ CloseWrite() error }); ok {
			hc.CloseWrite()
		}
	}()
	_, err := io.Copy(stdout, conn)
	return err
}
