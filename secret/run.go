package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// RunConfig is `rssh secret run`: CMD with the op:// references in its
// environment resolved.
type RunConfig struct {
	Args     []string // CMD ARGS…
	Environ  []string // rssh's environment, KEY=VALUE
	EnvFiles []string // --env-file, in order: a later file wins, and every file wins over Environ
	// Drop names variables taken out of Environ before anything else (the
	// Service Account token, unless --keep-token); Set is applied last.
	Drop []string
	Set  []EnvVar
	// NoMasking passes CMD's output through untouched. Otherwise every
	// resolved value (and each value in Mask) is concealed in CMD's stdout
	// and stderr.
	NoMasking bool
	Mask      [][]byte
	// Backend is opened only when a reference is found, so a command with
	// none needs no token.
	Backend func() (Backend, error)
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// ExitError is a failure before CMD ran, with the exit status to use.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Run runs the command and returns its exit status: CMD's own, 128+n when
// a signal n ended it. An error means CMD did not run (or its output
// could not be relayed); its status is then 127 (not found), 126 (not
// executable) or 255.
func Run(ctx context.Context, c RunConfig) (int, error) {
	if len(c.Args) == 0 {
		return 255, errors.New("no command to run")
	}
	env, err := BuildEnv(c.Environ, c.Drop, c.EnvFiles, c.Set)
	if err != nil {
		return 255, err
	}
	var secrets [][]byte
	if HasReferences(env) {
		if c.Backend == nil {
			return 255, errors.New("no backend to resolve references")
		}
		b, err := c.Backend()
		if err != nil {
			return 255, err
		}
		env, secrets, err = ResolveEnv(ctx, b, env)
		if err != nil {
			return 255, err
		}
	}
	var mask [][]byte
	if !c.NoMasking {
		mask = append(secrets, c.Mask...)
	}
	return Exec(ExecConfig{Args: c.Args, Env: env, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, Mask: mask})
}

// BuildEnv is the child's environment before resolution: environ without
// drop, then each env file in order (later wins, and a file wins over the
// environment, as with op run), then set. $NAME in a file sees the
// environment and what earlier lines and files defined.
func BuildEnv(environ, drop, envFiles []string, set []EnvVar) ([]string, error) {
	var order []string
	vals := map[string]string{}
	put := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || containsString(drop, k) {
			continue
		}
		put(k, v)
	}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	for _, f := range envFiles {
		vars, err := ReadEnvFile(f, lookup)
		if err != nil {
			return nil, err
		}
		for _, v := range vars {
			put(v.Name, v.Value)
		}
	}
	for _, v := range set {
		put(v.Name, v.Value)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// HasReferences reports whether a value in env is an op:// reference.
func HasReferences(env []string) bool {
	for _, kv := range env {
		if _, v, _ := strings.Cut(kv, "="); IsRef(v) {
			return true
		}
	}
	return false
}

// ResolveEnv replaces every value that is an op:// reference with the
// secret, all references in one ResolveAll (each distinct reference
// once), and returns the values it put in.
func ResolveEnv(ctx context.Context, b Backend, env []string) ([]string, [][]byte, error) {
	var refs []string
	index := map[string]int{}
	for _, kv := range env {
		if _, v, _ := strings.Cut(kv, "="); IsRef(v) {
			if _, ok := index[v]; !ok {
				index[v] = len(refs)
				refs = append(refs, v)
			}
		}
	}
	if len(refs) == 0 {
		return env, nil, nil
	}
	vals, err := b.ResolveAll(ctx, refs)
	if err != nil {
		return nil, nil, err
	}
	if len(vals) != len(refs) {
		return nil, nil, fmt.Errorf("%s backend answered %d values for %d references", b.Name(), len(vals), len(refs))
	}
	out := make([]string, len(env))
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		j, ok := index[v]
		if !ok {
			out[i] = kv
			continue
		}
		if bytes.IndexByte(vals[j], 0) >= 0 {
			return nil, nil, fmt.Errorf("%s: the secret holds a NUL byte, which no environment variable can", k)
		}
		out[i] = k + "=" + string(vals[j])
	}
	return out, vals, nil
}

// ExecConfig is one child process with its output masked.
type ExecConfig struct {
	Args   []string
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Mask   [][]byte // nothing to mask: output is passed through untouched
}

// maskIdle is how long output that could be the start of a secret is held
// when nothing more comes: long enough that a secret written in one go is
// never split by it, short enough that a prompt is not noticeably late.
var maskIdle = 250 * time.Millisecond

// waitDelay is how long output is still relayed after CMD exited, for a
// process it left behind holding its stdout.
var waitDelay = 2 * time.Second

// forwarded are the signals rssh passes to CMD.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Exec runs the child in rssh's process group with stdin as given,
// forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it,
// and returns its exit status (128+n for a signal n).
//
// With something to mask, each of the child's stdout and stderr is a pipe
// rssh reads, masks and relays, as op run does; where rssh's own stream
// is a terminal the child gets a pseudo-terminal instead of the pipe
// (its output post-processing off, the terminal's size kept in step), so
// it still sees a terminal and keeps its colours and line buffering.
func Exec(c ExecConfig) (int, error) {
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Env = c.Env
	cmd.Stdin = c.Stdin
	var pumps []*pump
	masker := !(len(c.Mask) == 0 || NewMasker(c.Mask).Empty())
	for _, s := range []struct {
		dst io.Writer
		to  *io.Writer
	}{{c.Stdout, &cmd.Stdout}, {c.Stderr, &cmd.Stderr}} {
		if !masker || s.dst == nil {
			*s.to = s.dst
			continue
		}
		p, err := newPump(s.dst, NewMasker(c.Mask))
		if err != nil {
			for _, p := range pumps {
				p.abort()
			}
			return 255, err
		}
		*s.to = p.w
		pumps = append(pumps, p)
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	var winch chan os.Signal
	for _, p := range pumps {
		if p.term != nil {
			winch = make(chan os.Signal, 1)
			signal.Notify(winch, syscall.SIGWINCH)
			break
		}
	}
	defer func() {
		signal.Stop(sigs)
		if winch != nil {
			signal.Stop(winch)
		}
	}()
	tty := controllingTTY()
	if tty != nil {
		defer tty.Close()
	}

	if err := cmd.Start(); err != nil {
		for _, p := range pumps {
			p.abort()
		}
		code := 255
		switch {
		case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
			code = 127
		case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC):
			code = 126
		}
		return code, &ExitError{Code: code, Err: err}
	}
	var wg sync.WaitGroup
	for _, p := range pumps {
		p.w.Close() // the child holds its own copy
		wg.Add(1)
		go func() { defer wg.Done(); p.run() }()
	}
	exited := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if !deliveredByTerminal(s, tty) {
					cmd.Process.Signal(s)
				}
			case <-winch:
				for _, p := range pumps {
					p.resize()
				}
			case <-exited:
				return
			}
		}
	}()
	werr := cmd.Wait()
	close(exited)

	// Relay what the child wrote before it exited; a process it left
	// behind holding the stream gets waitDelay more.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitDelay):
		for _, p := range pumps {
			p.stop()
		}
		<-done
	}
	var relayErr error
	for _, p := range pumps {
		if p.err != nil && relayErr == nil {
			relayErr = p.err
		}
	}
	st := cmd.ProcessState
	if st == nil {
		return 255, werr
	}
	code := st.ExitCode()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if relayErr != nil {
		return code, fmt.Errorf("relaying the command's output: %w", relayErr)
	}
	return code, nil
}

// controllingTTY opens the controlling terminal, or returns nil.
var controllingTTY = openControllingTTY

// openControllingTTY opens the controlling terminal, or nil.
func openControllingTTY() *os.File {
	f, err := os.OpenFile("/dev/tty", os.O_RDONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	return f
}

// deliveredByTerminal reports whether s reached the child already: a ^C
// or ^\ typed at the terminal goes to its whole foreground process group,
// the child (in rssh's group) included, so passing it on would deliver it
// twice. Only SIGINT and SIGQUIT come from the keyboard; any other signal
// is forwarded, and so is SIGINT when rssh is not in the foreground of a
// terminal (kill -INT from a script, systemd, a parent process).
func deliveredByTerminal(s os.Signal, tty *os.File) bool {
	if tty == nil || (s != syscall.SIGINT && s != syscall.SIGQUIT) {
		return false
	}
	return foreground(tty)
}

// pump relays one output stream of the child through a Masker.
type pump struct {
	dst  io.Writer
	m    *Masker
	r, w *os.File // read end (or pty master), the child's end
	term *os.File // dst when it is a terminal the child mirrors
	err  error

	stopping atomic.Bool
}

func newPump(dst io.Writer, m *Masker) (*pump, error) {
	p := &pump{dst: dst, m: m}
	if f, ok := dst.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		master, slave, err := pty.Open()
		if err == nil {
			if err = rawOutput(slave); err == nil {
				p.r, p.w, p.term = master, slave, f
				p.resize()
				return p, nil
			}
			master.Close()
			slave.Close()
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.r, p.w = r, w
	return p, nil
}

func (p *pump) resize() {
	if p.term != nil {
		pty.InheritSize(p.term, p.r)
	}
}

func (p *pump) abort() {
	p.r.Close()
	p.w.Close()
}

// stop ends run's reading now.
func (p *pump) stop() {
	p.stopping.Store(true)
	p.r.SetReadDeadline(time.Unix(1, 0))
}

func (p *pump) run() {
	defer p.r.Close()
	buf := make([]byte, 32<<10)
	for {
		if p.m.Held() {
			p.r.SetReadDeadline(time.Now().Add(maskIdle))
		}
		n, err := p.r.Read(buf)
		if n > 0 {
			p.write(p.m.Write(buf[:n]))
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && !p.stopping.Load() {
			// Idle with bytes held back: out they go.
			p.write(p.m.Flush())
			p.r.SetReadDeadline(time.Time{})
			if !p.stopping.Load() {
				continue
			}
		}
		if err != nil {
			// EOF from a pipe, EIO from a pty master once the child's
			// side is closed, or stopped.
			p.write(p.m.Flush())
			return
		}
	}
}

func (p *pump) write(b []byte) {
	if len(b) == 0 || p.err != nil {
		return
	}
	if _, err := p.dst.Write(b); err != nil {
		p.err = err
	}
}
