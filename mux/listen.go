//go:build unix

package mux

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/internal/sockdir"
)

// sunPathLen is sizeof(sockaddr_un.sun_path) here.
var sunPathLen = len(unix.RawSockaddrUnix{}.Path)

// tempSuffixLen is the ".XXXXXXXXXXXXXXXX" a master listens on before it
// links the socket into place, as muxserver_listen.
const tempSuffixLen = 17

var (
	// ErrPathTooLong is a ControlPath that does not fit sun_path.
	ErrPathTooLong = errors.New("ControlPath too long")
	// ErrNoMaster is a ControlPath with nothing there (ENOENT).
	ErrNoMaster = errors.New("no control socket")
	// ErrStale is a control socket nobody listens on (ECONNREFUSED): a
	// master that died without removing it.
	ErrStale = errors.New("stale control socket")
	// ErrExists is a master that cannot take its ControlPath because
	// something is already there.
	ErrExists = errors.New("control socket already exists")
)

// PathError says what was wrong with a ControlPath.
type PathError struct {
	Path string
	Err  error  // one of the sentinels above, or the system's error
	Msg  string // OpenSSH's wording, where it has one
}

func (e *PathError) Error() string { return e.Msg }
func (e *PathError) Unwrap() error { return e.Err }

func tooLong(path string, limit int) error {
	return &PathError{Path: path, Err: ErrPathTooLong,
		Msg: fmt.Sprintf("ControlPath too long ('%s' >= %d bytes)", path, limit)}
}

// Listener is a master's control socket.
type Listener struct {
	Path string
	l    *net.UnixListener
	dev  uint64
	ino  uint64
}

// Listen makes the control socket at path as OpenSSH's muxserver_listen:
// it listens on a temporary name next to path, mode 0600, then links it
// into place, so no client ever reaches a socket that is not listening
// and a socket already at path (a live master, or a stale one) is never
// replaced: that is ErrExists. The directory must belong to the user or
// root and be writable by no one else unless sticky (/tmp).
func Listen(path string) (*Listener, error) {
	if len(path)+tempSuffixLen >= sunPathLen {
		return nil, tooLong(path, sunPathLen-tempSuffixLen)
	}
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, &PathError{Path: path, Err: err, Msg: fmt.Sprintf("ControlPath %s: %v", path, err)}
	}
	tmp := path + "." + randomName(tempSuffixLen-1)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	unix.CloseOnExec(fd)
	fail := func(what string, err error) (*Listener, error) {
		unix.Close(fd)
		os.Remove(tmp)
		return nil, &PathError{Path: path, Err: err, Msg: fmt.Sprintf("%s %s: %v", what, path, err)}
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: tmp}); err != nil {
		unix.Close(fd)
		return nil, &PathError{Path: path, Err: err, Msg: fmt.Sprintf("bind %s: %v", tmp, err)}
	}
	// Not listening yet, so nobody can connect while the mode is wider.
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail("chmod", err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		return fail("listen", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			unix.Close(fd)
			os.Remove(tmp)
			return nil, &PathError{Path: path, Err: ErrExists,
				Msg: fmt.Sprintf("ControlSocket %s already exists, disabling multiplexing", path)}
		}
		return fail("link", err)
	}
	os.Remove(tmp)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail("stat", err)
	}
	f := os.NewFile(uintptr(fd), path)
	fl, err := net.FileListener(f)
	f.Close()
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	return &Listener{Path: path, l: fl.(*net.UnixListener), dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// Accept waits for the next client.
func (l *Listener) Accept() (*net.UnixConn, error) { return l.l.AcceptUnix() }

// Close stops listening and removes the socket file if it is still the
// one this listener made (a newer master's socket is left alone).
func (l *Listener) Close() error {
	var st unix.Stat_t
	if unix.Lstat(l.Path, &st) == nil && uint64(st.Dev) == l.dev && uint64(st.Ino) == l.ino {
		os.Remove(l.Path)
	}
	return l.l.Close()
}

// RemoveStale removes the socket at path when it is stale: a socket file
// owned by this user on which nobody listens. It reports whether it
// removed one. Anything else (a live master, another user's socket, a
// file that is not a socket) is left in place.
func RemoveStale(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return false, fmt.Errorf("%s exists and is not a socket", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != uint32(os.Getuid()) {
		return false, fmt.Errorf("%s belongs to uid %d", path, st.Uid)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return false, nil
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// checkDir is sockdir.Check: a directory only this user or root can
// write to.
func checkDir(dir string) error { return sockdir.Check(dir, true) }

func randomName(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}
