package resolverd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
)

var selfPID = os.Getpid()

// Fds a daemon gets from the Client that starts it.
const (
	TokenFD = 3 // the token, then EOF
	ReadyFD = 4 // the daemon writes "ok\n" or "error: …\n" here once listening
)

// maxToken caps the token read from the pipe (a real one is about 1 KiB).
const maxToken = 64 << 10

// DaemonOptions configure RunDaemon.
type DaemonOptions struct {
	// Backend names the backend (part of the socket name).
	Backend string
	// NewBackend builds it from the token, which it then owns.
	NewBackend func(tok envmap.Token) (secret.Backend, error)
	// TokenFD and ReadyFD default to TokenFD and ReadyFD.
	TokenFD, ReadyFD int
	Getenv           func(string) string
	TTL, Idle        time.Duration
	Log              *slog.Logger
}

// RunDaemon is `rssh secret resolverd`: it reads the token from TokenFD,
// takes the socket's lock (if another daemon holds it, that one serves:
// report ready and return), listens, reports ready on ReadyFD, and serves
// until the session leader exits, the idle timeout, or a signal. It
// removes its socket on the way out.
func RunDaemon(o DaemonOptions) (err error) {
	noDump()
	if o.TokenFD == 0 {
		o.TokenFD = TokenFD
	}
	if o.ReadyFD == 0 {
		o.ReadyFD = ReadyFD
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ready := os.NewFile(uintptr(o.ReadyFD), "ready")
	reported := false
	report := func(err error) {
		if reported || ready == nil {
			return
		}
		reported = true
		if err != nil {
			fmt.Fprintf(ready, "error: %s\n", oneLine(err.Error()))
		} else {
			io.WriteString(ready, "ok\n")
		}
		ready.Close()
	}
	defer func() { report(err) }()

	tok, err := readToken(o.TokenFD)
	if err != nil {
		return err
	}
	defer tok.Wipe()
	dir, err := Dir(o.Getenv)
	if err != nil {
		return err
	}
	sid, err := unix.Getsid(0)
	if err != nil {
		return fmt.Errorf("resolver: session id: %w", err)
	}
	path := filepath.Join(dir, socketName(tok, o.Backend, sid))
	lock, err := takeLock(path+".lock", path)
	if err != nil {
		return err
	}
	if lock == nil {
		log.Info("another resolver serves this session")
		return nil // report(nil): the client dials that one
	}
	defer func() {
		// Socket first (ln's deferred Close has run), then the lock file,
		// while still holding it: a daemon that opened this file before the
		// unlink finds it stale and makes its own.
		os.Remove(lock.Name())
		lock.Close()
	}()
	// Holding the lock, any socket file left is a dead daemon's.
	os.Remove(path)
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	defer ln.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	b, err := o.NewBackend(envmap.NewToken(bytes.Clone(tok.Reveal())))
	if err != nil {
		return err
	}
	if c, ok := b.(interface{ Close() }); ok {
		defer c.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	signal.Ignore(syscall.SIGPIPE)
	gone, watched := watchSession(sid)
	log.Info("resolver listening", "socket", path, "backend", o.Backend, "session", sid, "watched", watched)
	report(nil)
	if w, ok := b.(interface{ Warm(context.Context) error }); ok {
		go func() {
			// The first request then finds the core compiled and the client
			// signed in; a failure here is retried by that request.
			wctx, cancel := context.WithTimeout(ctx, resolveTimeout)
			defer cancel()
			if err := w.Warm(wctx); err != nil {
				log.Warn("warm-up failed", "err", err)
			}
		}()
	}
	s := &Server{Backend: b, Auth: authFor(tok), UID: os.Geteuid(), TTL: o.TTL, Idle: o.Idle, Log: log}
	return s.Serve(ctx, ln, gone)
}

func readToken(fd int) (envmap.Token, error) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return envmap.Token{}, fmt.Errorf("resolver: no token pipe on fd %d: this daemon is started by rssh secret itself", fd)
	}
	f := os.NewFile(uintptr(fd), "token")
	defer f.Close()
	buf := make([]byte, maxToken+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		clear(buf)
		return envmap.Token{}, fmt.Errorf("resolver: reading the token: %w", err)
	}
	if n > maxToken {
		clear(buf)
		return envmap.Token{}, errors.New("resolver: the token is too long")
	}
	t := bytes.TrimSpace(buf[:n])
	out := append([]byte(nil), t...)
	clear(buf)
	if len(out) == 0 {
		return envmap.Token{}, errors.New("resolver: no token on the pipe")
	}
	return envmap.NewToken(out), nil
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// takeLock takes the exclusive lock on lockPath, or returns nil, nil when
// a live daemon holds it (once its socket exists, or after a short wait).
// A lock taken on a file that was unlinked meanwhile (its daemon exiting)
// is dropped and taken again on the new file.
func takeLock(lockPath, sockPath string) (*os.File, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, fmt.Errorf("resolver: %w", err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			var a, b unix.Stat_t
			if unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(lockPath, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev {
				return f, nil
			}
			f.Close() // stale: unlinked by an exiting daemon
			continue
		}
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("resolver: lock: %w", err)
		}
		if _, err := os.Stat(sockPath); err == nil || time.Now().After(deadline) {
			return nil, nil
		}
		time.Sleep(20 * time.Millisecond) // polling the holder's socket
	}
}
