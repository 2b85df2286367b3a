package secret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// FetchVar is one NAME=op://… of `rssh secret fetch`.
type FetchVar struct {
	Name string
	Ref  string
}

// FetchConfig is `rssh secret fetch`: the service tool that resolves a
// unit's secrets into an EnvironmentFile in RAM, with retries.
type FetchConfig struct {
	Out       string      // the EnvironmentFile
	Vars      []FetchVar  // what goes in it, in this order
	Attempts  int         // tries in all (default DefaultAttempts)
	FileMode  os.FileMode // default 0400
	AllowDisk bool        // write to a filesystem that is not tmpfs or ramfs
	LockFile  string      // default: .NAME.lock beside Out
	// MaxWait is the longest rssh waits when 1Password says it is
	// rate-limiting (default DefaultMaxWait); told to wait longer, fetch
	// gives up at once rather than ask again early.
	MaxWait time.Duration
	Backend Backend
	Log     io.Writer // a line for each failed attempt and for a wait on the lock

	// Test seams.
	sleep       func(context.Context, time.Duration) error
	jitter      func() float64 // in [0,1)
	fsType      func(path string) (int64, error)
	lockWaiting func()
	write       func(path string, data []byte, mode os.FileMode) error
}

const (
	DefaultAttempts = 12
	DefaultMaxWait  = 15 * time.Minute
	// firstDelay and maxDelay shape the backoff: about 1 s, 2 s, 4 s, …
	// up to 30 s, each ±25 %. Twelve attempts span about 3.5 minutes.
	firstDelay = time.Second
	maxDelay   = 30 * time.Second
	// rateLimitDelay is the wait when 1Password rate-limits without
	// saying for how long.
	rateLimitDelay = time.Minute
)

// Filesystem magic numbers from statfs(2).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

// FetchError is a failed fetch; Attempts is how many were made.
type FetchError struct {
	Attempts int
	Err      error
}

func (e *FetchError) Error() string {
	if e.Attempts > 1 {
		return fmt.Sprintf("after %d attempts: %v", e.Attempts, e.Err)
	}
	return e.Err.Error()
}
func (e *FetchError) Unwrap() error { return e.Err }

// Fetch resolves every reference (all in one ResolveAll per attempt),
// retrying with exponential backoff and jitter, waiting out 1Password's
// rate limits, and writes Out atomically. It holds an exclusive flock on
// the lock file from before the first attempt until Out is in place, so
// concurrent fetches of one file run one after the other. On any failure
// Out is as it was (or absent).
func Fetch(ctx context.Context, c FetchConfig) error {
	if err := c.defaults(); err != nil {
		return err
	}
	refs := make([]string, len(c.Vars))
	seen := map[string]bool{}
	for i, v := range c.Vars {
		if !ValidEnvName(v.Name) {
			return fmt.Errorf("%q is not a variable name (letters, digits and _, not starting with a digit)", v.Name)
		}
		if seen[v.Name] {
			return fmt.Errorf("%s is given twice", v.Name)
		}
		seen[v.Name] = true
		refs[i] = v.Ref
	}
	if err := ValidateRefs(refs); err != nil {
		return err
	}
	dir := filepath.Dir(c.Out)
	if err := c.checkRAM(dir); err != nil {
		return err
	}
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	if err := c.checkRAM(dir); err != nil {
		return err
	}
	unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	removeStaleTemps(c.Out)

	vals, err := c.resolve(ctx, refs)
	if err != nil {
		return err
	}
	defer wipeAll(vals)
	vars := make([]EnvVar, len(c.Vars))
	for i, v := range c.Vars {
		vars[i] = EnvVar{v.Name, string(vals[i])}
	}
	data, err := FormatEnvironmentFile(vars)
	if err != nil {
		return err
	}
	defer clear(data)
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.write(c.Out, data, c.FileMode)
}

// removeStaleTemps removes what a fetch of out that was killed while
// writing left behind (WriteFileAtomic's .NAME.tmp-* files, which may hold
// secrets). The caller holds the lock, so no fetch of out is writing.
func removeStaleTemps(out string) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+globEscape(filepath.Base(out))+".tmp-*"))
	for _, f := range stale {
		os.Remove(f)
	}
}

func globEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

func (c *FetchConfig) defaults() error {
	if c.Out == "" {
		return errors.New("no --out FILE")
	}
	if len(c.Vars) == 0 {
		return errors.New("nothing to fetch: give NAME=op://vault/item/field")
	}
	if c.Backend == nil {
		return errors.New("no backend")
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Attempts < 1 {
		return fmt.Errorf("--attempts %d: at least 1", c.Attempts)
	}
	if c.FileMode == 0 {
		c.FileMode = 0o400
	}
	if c.FileMode&^0o777 != 0 {
		return fmt.Errorf("--file-mode %#o: permission bits only", c.FileMode)
	}
	if c.LockFile == "" {
		c.LockFile = filepath.Join(filepath.Dir(c.Out), "."+filepath.Base(c.Out)+".lock")
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.jitter == nil {
		c.jitter = rand.Float64
	}
	if c.fsType == nil {
		c.fsType = statfsType
	}
	if c.write == nil {
		c.write = WriteFileAtomic
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkRAM refuses a directory (or, if it does not exist yet, its nearest
// existing parent) that is not on tmpfs or ramfs, unless AllowDisk.
func (c *FetchConfig) checkRAM(dir string) error {
	if c.AllowDisk {
		return nil
	}
	p := dir
	for {
		t, err := c.fsType(p)
		if err == nil {
			if t == tmpfsMagic || t == ramfsMagic {
				return nil
			}
			return &ramError{dir: dir, fs: p}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", p, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("%s: %w", dir, err)
		}
		p = parent
	}
}

type ramError struct{ dir, fs string }

func (e *ramError) Error() string {
	return fmt.Sprintf("%s is not on tmpfs or ramfs: secrets would be written to disk", e.dir)
}

func (e *ramError) HintText() string {
	return "write under a tmpfs (/run on most systems, /dev/shm), or pass --allow-disk if this disk is meant to hold them"
}

// mkdirPrivate creates dir and any missing parents with mode 0700 (the
// umask aside); an existing directory is left as it is.
func mkdirPrivate(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirPrivate(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	} else if err == nil {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// lock takes the lock file's exclusive flock, waiting for another fetch
// that holds it. The lock goes with the process, whatever ends it.
func (c *FetchConfig) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(c.LockFile, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	fd := int(f.Fd())
	err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		fmt.Fprintf(c.Log, "rssh: secret fetch: waiting for another fetch of %s (lock %s)\n", c.Out, c.LockFile)
		if c.lockWaiting != nil {
			c.lockWaiting()
		}
		got := make(chan error, 1)
		go func() {
			got <- ignoringEINTR(func() error { return syscall.Flock(fd, syscall.LOCK_EX) })
		}()
		select {
		case err = <-got:
		case <-ctx.Done():
			// Closing the file drops the lock if the flock gets it late.
			go func() { <-got; f.Close() }()
			return nil, ctx.Err()
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", c.LockFile, err)
	}
	return func() { f.Close() }, nil
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// resolve makes up to Attempts tries. Errors that another try cannot fix
// (a malformed or missing reference, a refused token, no backend) end it
// at once; anything else is retried after a backoff delay, or after the
// wait 1Password asked for when it rate-limits.
func (c *FetchConfig) resolve(ctx context.Context, refs []string) ([][]byte, error) {
	for attempt := 1; ; attempt++ {
		vals, err := c.Backend.ResolveAll(ctx, refs)
		if err == nil {
			if len(vals) != len(refs) {
				wipeAll(vals)
				return nil, fmt.Errorf("%s backend answered %d values for %d references", c.Backend.Name(), len(vals), len(refs))
			}
			return vals, nil
		}
		if ctx.Err() != nil {
			return nil, &FetchError{attempt, err}
		}
		if permanent(err) || attempt >= c.Attempts {
			return nil, &FetchError{attempt, err}
		}
		d := c.backoff(attempt)
		if errors.Is(err, ErrRateLimited) {
			wait := rateLimitDelay
			var e *Error
			if errors.As(err, &e) && e.RetryIn > 0 {
				wait = e.RetryIn
			}
			if wait > c.MaxWait {
				return nil, &FetchError{attempt, &rateLimitError{err, wait, c.MaxWait}}
			}
			// A little past what was asked, and never all at once.
			wait += time.Duration(c.jitter() * float64(wait) / 10)
			d = max(d, min(wait, c.MaxWait))
		}
		fmt.Fprintf(c.Log, "rssh: secret fetch: attempt %d of %d failed: %v; retrying in %v\n", attempt, c.Attempts, err, d.Round(100*time.Millisecond))
		if err := c.sleep(ctx, d); err != nil {
			return nil, &FetchError{attempt, err}
		}
	}
}

// backoff is the delay after the attempt-th failure: firstDelay doubled
// each time up to maxDelay, ±25 %.
func (c *FetchConfig) backoff(attempt int) time.Duration {
	d := firstDelay
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return time.Duration(float64(d) * (0.75 + c.jitter()/2))
}

// permanent reports whether err will be the same on the next attempt.
func permanent(err error) bool {
	var re *RefError
	return errors.As(err, &re) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuth) || errors.Is(err, ErrNoBackend)
}

type rateLimitError struct {
	err       error
	wait, max time.Duration
}

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("%v (1Password asks to wait %v, more than --max-wait %v)", e.err, e.wait, e.max)
}
func (e *rateLimitError) Unwrap() error { return e.err }
func (e *rateLimitError) HintText() string {
	return "let the unit fail and restart later (Restart=on-failure), or raise --max-wait"
}
