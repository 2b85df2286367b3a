//go:build unix

package envmap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// defaultLockDir is $XDG_RUNTIME_DIR/rssh (per-user, RAM-backed, removed at
// logout) or else $TMPDIR/rssh-<uid>.
func defaultLockDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return filepath.Join(d, "rssh")
		}
	}
	return filepath.Join(os.TempDir(), "rssh-"+strconv.Itoa(os.Geteuid()))
}

// ensurePrivateDir makes dir (mode 0700) or checks that the one there is a
// real directory we own that nobody else can write: in a shared /tmp another
// user could have made it first to hold our lock forever.
func ensurePrivateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to us", dir, st.Uid)
	}
	if st.Mode&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting until it is free or
// ctx ends. The file holds nothing; only the lock on it matters, and the
// kernel drops the lock if the process dies. Unlocking removes the file, so
// no lock files pile up in the runtime dir: a waiter that then gets the lock
// on the removed file sees that the path names another file (or none) and
// locks again.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flock(ctx, f); err != nil {
			return nil, err
		}
		if isCurrent(f, path) {
			return func() {
				// Removed while still held, so nobody can lock the old
				// file and believe it is the current one.
				os.Remove(path)
				f.Close()
			}, nil
		}
		f.Close()
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
	}
}

// isCurrent reports whether path still names the file f has open.
func isCurrent(f *os.File, path string) bool {
	var held, named unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil || unix.Lstat(path, &named) != nil {
		return false
	}
	return held.Dev == named.Dev && held.Ino == named.Ino
}

// flock takes the exclusive lock on f, or closes f and returns ctx's cause.
func flock(ctx context.Context, f *os.File) error {
	// Fast path, then a blocking flock in a goroutine, since flock cannot
	// be interrupted by a context: if ctx ends first, the goroutine releases
	// the lock as soon as it gets it.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return err
	}
	got := make(chan error, 1)
	go func() {
		for {
			err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if !errors.Is(err, unix.EINTR) {
				got <- err
				return
			}
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return err
		}
		return nil
	case <-ctx.Done():
		go func() { <-got; f.Close() }()
		return context.Cause(ctx)
	}
}
