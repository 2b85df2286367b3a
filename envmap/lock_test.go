//go:build unix

package envmap

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEnsurePrivateDir(t *testing.T) {
	base := t.TempDir()

	dir := filepath.Join(base, "new")
	if err := ensurePrivateDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("new lock dir has mode %v, want 0700", fi.Mode().Perm())
	}

	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if err := ensurePrivateDir(open); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o700 {
		t.Errorf("world-writable lock dir left at %v", fi.Mode().Perm())
	}

	link := filepath.Join(base, "link")
	os.Symlink(dir, link)
	if err := ensurePrivateDir(link); err == nil {
		t.Error("a symlink was accepted as the lock dir")
	}

	if os.Geteuid() == 0 {
		theirs := filepath.Join(base, "theirs")
		os.Mkdir(theirs, 0o700)
		os.Chown(theirs, 65534, 65534)
		if err := ensurePrivateDir(theirs); err == nil {
			t.Error("a lock dir owned by another user was accepted")
		}
	}
}

func TestLockFileHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path); err == nil {
		t.Fatal("got a lock someone else holds")
	}
	unlock()
	unlock2, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the lock file is left behind after unlock (%v)", err)
	}
}

// Unlock removes the file, so a waiter can get the lock on a file that is
// gone: it must lock again rather than run beside the next holder.
func TestLockFileExcludesAcrossRemoval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				unlock, err := lockFile(context.Background(), path)
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				runtime.Gosched()
				inside.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d times two holders had the lock at once", n)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the lock file is left behind (%v)", err)
	}
}
