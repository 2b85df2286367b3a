package sshproxy

import (
	"bytes"
	"io"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/rssh/rssh/internal/crash"
)

// WindowSize is a terminal's size in characters.
type WindowSize struct{ Width, Height int }

// Terminal is the local terminal of a PTY session: it reads the modes and
// size sent to the server, switches to raw mode for the session and back
// on every way out, and reports window changes.
type Terminal struct {
	fd int

	mu     sync.Mutex
	saved  *term.State // non-nil while raw
	unhook func()      // while raw: removes the crash hook that restores
	wake   *os.File    // while ReadLine waits: writing to it ends the wait
}

// OpenTerminal returns the terminal on f. When f is not a terminal (ssh
// -tt with a pipe), raw mode and the size are no-ops, as in OpenSSH.
func OpenTerminal(f *os.File) *Terminal { return &Terminal{fd: int(f.Fd())} }

// IsTerminal reports whether the file under t is a terminal.
func (t *Terminal) IsTerminal() bool { return term.IsTerminal(t.fd) }

// Size is the terminal's window size; zero when there is none, which is
// what OpenSSH sends then.
func (t *Terminal) Size() WindowSize {
	w, h, err := term.GetSize(t.fd)
	if err != nil {
		return WindowSize{}
	}
	return WindowSize{Width: w, Height: h}
}

// MakeRaw puts the terminal in raw mode until Restore.
func (t *Terminal) MakeRaw() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved != nil || !term.IsTerminal(t.fd) {
		return
	}
	if s, err := term.MakeRaw(t.fd); err == nil {
		t.saved = s
		// A panic on another goroutine ends the process without this
		// session's deferred Restore: crash.Go runs this first.
		t.unhook = crash.OnPanic(t.Restore)
	}
}

// Restore puts back the modes from before MakeRaw. It is safe to call more
// than once, and from any goroutine.
func (t *Terminal) Restore() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved != nil {
		term.Restore(t.fd, t.saved)
		t.saved = nil
		t.unhook()
	}
}

// Raw reports whether the terminal is in raw mode now.
func (t *Terminal) Raw() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.saved != nil
}

// Interrupt ends a ReadLine that is waiting, as ^C ends ssh's "ssh>"
// prompt, and reports whether there was one: a SIGINT that comes while the
// command line is open belongs to it, not to the session.
func (t *Terminal) Interrupt() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.wake == nil {
		return false
	}
	t.wake.Write([]byte{0})
	return true
}

// Messages is a writer for rssh's own lines (warnings, the closing line)
// that ends lines with \r\n while the terminal is raw, as OpenSSH's log
// does, so they do not staircase across the screen.
func (t *Terminal) Messages(w io.Writer) io.Writer { return &crlfWriter{t: t, w: w} }

type crlfWriter struct {
	t *Terminal
	w io.Writer
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	if c.t == nil || !c.t.Raw() || !bytes.Contains(p, []byte{'\n'}) {
		return c.w.Write(p)
	}
	q := bytes.ReplaceAll(bytes.ReplaceAll(p, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	if _, err := c.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
