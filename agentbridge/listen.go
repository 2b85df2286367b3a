package agentbridge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rssh/rssh/internal/sockdir"
)

// ErrAlreadyRunning is returned (wrapped) by Serve when something already
// answers on the listen socket: most likely another bridge.
var ErrAlreadyRunning = errors.New("already running")

// socketMode lets any local user connect. The gate is the peer-credential
// check on each accepted connection; the file mode cannot be the gate,
// because root ignores it, and a peer UID named with --allow-uid must pass it.
const socketMode = 0o666

// Alive reports whether something accepts connections on the socket at
// path, without sending it a byte.
func Alive(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ListenError is a bridge socket that could not be made at Path.
type ListenError struct {
	Path string
	Err  error
}

func (e *ListenError) Error() string { return "listen " + e.Path + ": " + e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// listen makes the socket at path: its directory is created if missing
// (mode 0711: others may reach a socket inside, not list it; only that last
// directory, as a mistyped --listen must not build a tree as root) and must not
// be writable by anyone who could swap the socket; a stale socket file left
// by a crashed bridge is replaced; a live one is ErrAlreadyRunning.
func listen(path string) (*net.UnixListener, error) {
	l, err := makeSocket(path)
	if err != nil {
		return nil, &ListenError{Path: path, Err: err}
	}
	return l, nil
}

func makeSocket(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, errors.New("exists and is not a socket")
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w (something answers on it)", ErrAlreadyRunning)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("probing the existing socket: %w", err)
		}
		// Nobody listens: a stale socket from a bridge that did not exit cleanly.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if op := new(net.OpError); errors.As(err, &op) {
		return nil, op.Err // "listen unix PATH:" would repeat the path
	} else if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, socketMode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// checkDir is sockdir.Check: a directory only this user or root can
// write to.
func checkDir(dir string) error { return sockdir.Check(dir, false) }
