//go:build linux

package envmap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// clock is an adjustable Now for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// debugLog captures everything the package logs at any level.
func debugLog() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&syncWriter{w: &b}, &slog.HandlerOptions{Level: slog.LevelDebug - 10})), &b
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func checkNoTokens(t *testing.T, what, out string, tokens map[string]string) {
	t.Helper()
	for env, tok := range tokens {
		if strings.Contains(out, tok) {
			t.Errorf("the %s token is in %s", env, what)
		}
	}
}

func wantToken(t *testing.T, tok Token, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if string(tok.Reveal()) != want {
		t.Fatalf("Token returned %d bytes that are not the expected token", len(tok.Reveal()))
	}
}

func wantRuns(t *testing.T, f *testenv.FakeOp, n int, when string) {
	t.Helper()
	if got := len(f.Runs(t)); got != n {
		t.Fatalf("%s: op has run %d times, want %d", when, got, n)
	}
}

// Acceptance 2 (envmap part): with the Secret Service, the first Token runs
// op once, the second zero times; after the TTL it runs again; clearing the
// cache makes it run again. Nothing readable reaches the disk.
func TestResolverSecretServiceCache(t *testing.T) {
	s := newSandbox(t)
	startKeyring(t, s)
	f := newFakeOp(t, "Admin Vault")
	log, logBuf := debugLog()
	cache := OpenCache(log)
	if _, ok := cache.(*secretServiceCache); !ok {
		t.Fatalf("OpenCache with a Secret Service up = %v, want the Secret Service cache", cache)
	}
	clk := &clock{t: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
	r := &Resolver{Cache: cache, Source: fastOp(f), LockDir: s.Locks, Log: log, Now: clk.Now}
	ctx := context.Background()
	want := f.Tokens["production"]

	if _, ok := r.Cached(f.Vault, "production"); ok {
		t.Fatal("Cached hit on an empty keyring")
	}
	tok, err := r.Token(ctx, f.Vault, "production")
	wantToken(t, tok, err, want)
	wantRuns(t, f, 1, "first Token")
	tok.Wipe()

	tok, err = r.Token(ctx, f.Vault, "production")
	wantToken(t, tok, err, want)
	wantRuns(t, f, 1, "second Token (cache hit)")
	if c, ok := r.Cached(f.Vault, "production"); !ok || string(c.Reveal()) != want {
		t.Error("Cached: no hit after a fetch")
	}

	// A fresh connection to the keyring (as the next rssh process has)
	// sees the entry too.
	if tok2, fetched, ok, err := OpenCache(nil).Get(f.Vault, "production"); err != nil || !ok || string(tok2.Reveal()) != want || !fetched.Equal(clk.Now()) {
		t.Errorf("second cache: Get = ok %v, fetched %v, err %v", ok, fetched, err)
	}

	es, err := r.List()
	if err != nil || len(es) != 1 || es[0] != (Entry{Vault: f.Vault, Env: "production", Fetched: clk.Now()}) {
		t.Errorf("List = %+v, %v; want the one production entry", es, err)
	}

	clk.Add(DefaultTTL - time.Second)
	tok, err = r.Token(ctx, f.Vault, "production")
	wantToken(t, tok, err, want)
	wantRuns(t, f, 1, "Token just inside the TTL")

	clk.Add(2 * time.Second)
	tok, err = r.Token(ctx, f.Vault, "production")
	wantToken(t, tok, err, want)
	wantRuns(t, f, 2, "Token after the TTL")
	tok, err = r.Token(ctx, f.Vault, "production")
	wantToken(t, tok, err, want)
	wantRuns(t, f, 2, "Token after the refetch")

	if err := r.Clear(f.Vault, "production"); err != nil {
		t.Fatal(err)
	}
	tok, err = r.Token(ctx, f.Vault, "production")
	wantToken(t, tok, err, want)
	wantRuns(t, f, 3, "Token after Clear")

	tok, err = r.Refresh(ctx, f.Vault, "production")
	wantToken(t, tok, err, want)
	wantRuns(t, f, 4, "Refresh")

	// Another environment is its own entry; Clear of all empties the list.
	tok, err = r.Token(ctx, f.Vault, "development")
	wantToken(t, tok, err, f.Tokens["development"])
	wantRuns(t, f, 5, "Token for development")
	if es, _ := r.List(); len(es) != 2 || es[0].Env != "development" || es[1].Env != "production" {
		t.Errorf("List = %+v, want development and production", es)
	}
	if err := r.Clear("", ""); err != nil {
		t.Fatal(err)
	}
	if es, _ := r.List(); len(es) != 0 {
		t.Errorf("List after Clear all = %+v", es)
	}

	f.CheckArgv(t)
	checkNoTokens(t, "the debug log", logBuf.String(), f.Tokens)
	// The keyring's own file is encrypted; nothing else may hold a token.
	scanForTokens(t, f.Tokens, s.Root, f.Dir)
}

// Acceptance 2 (envmap part), without D-Bus: the none cache; op runs every
// time; no file under HOME, TMPDIR or the test's dirs holds a token.
func TestResolverWithoutDBus(t *testing.T) {
	s := newSandbox(t)
	f := newFakeOp(t, "Admin")
	log, logBuf := debugLog()
	cache := OpenCache(log)
	if _, ok := cache.(noCache); !ok {
		t.Fatalf("OpenCache with no D-Bus = %v, want the none cache", cache)
	}
	if !strings.Contains(cache.String(), "no D-Bus") || strings.Count(logBuf.String(), "no D-Bus") != 1 {
		t.Errorf("want the reason once at debug level; cache %q, log:\n%s", cache, logBuf.String())
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		t.Errorf("OpenCache autolaunched a bus: DBUS_SESSION_BUS_ADDRESS=%s", a)
	}
	r := &Resolver{Cache: cache, Source: fastOp(f), LockDir: s.Locks, Log: log}
	for i := 1; i <= 3; i++ {
		tok, err := r.Token(context.Background(), f.Vault, "staging")
		wantToken(t, tok, err, f.Tokens["staging"])
		tok.Wipe()
		wantRuns(t, f, i, fmt.Sprintf("Token #%d", i))
	}
	if es, err := r.List(); err != nil || len(es) != 0 {
		t.Errorf("List = %v, %v", es, err)
	}
	f.CheckArgv(t)
	checkNoTokens(t, "the debug log", logBuf.String(), f.Tokens)
	scanForTokens(t, f.Tokens, s.Root, f.Dir, os.TempDir())
}

// A locked keyring is no cache at all: rssh never prompts to unlock it.
func TestOpenCacheLockedKeyring(t *testing.T) {
	s := newSandbox(t)
	startKeyring(t, s)
	out, err := exec.Command("dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets",
		"/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock",
		"array:objpath:/org/freedesktop/secrets/collection/login").CombinedOutput()
	if err != nil {
		t.Fatalf("locking the login collection: %v\n%s", err, out)
	}
	cache := OpenCache(nil)
	if _, ok := cache.(noCache); !ok || !strings.Contains(cache.String(), "locked") {
		t.Fatalf("OpenCache with a locked keyring = %v, want none (locked)", cache)
	}
}

// Acceptance 6 (envmap part), in one process: two goroutines that miss a
// cold cache at once run op once between them.
func TestResolverSingleFlightGoroutines(t *testing.T) {
	s := newSandbox(t)
	startKeyring(t, s)
	f := newFakeOp(t, "Admin")
	f.Write(t, "hold", "")
	cache := OpenCache(nil)
	if _, ok := cache.(*secretServiceCache); !ok {
		t.Fatalf("no Secret Service cache: %v", cache)
	}
	var wg sync.WaitGroup
	results := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Resolvers, as two connections would have.
			r := &Resolver{Cache: cache, Source: fastOp(f), LockDir: s.Locks}
			tok, err := r.Token(context.Background(), f.Vault, "production")
			results[i], errs[i] = string(tok.Reveal()), err
		}()
	}
	releaseWhenBothIn(t, f, lockPath(s.Locks, f.Vault, "production"))
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || results[i] != f.Tokens["production"] {
			t.Errorf("caller %d: err %v, right token %v", i, errs[i], results[i] == f.Tokens["production"])
		}
	}
	wantRuns(t, f, 1, "two concurrent cold-cache Token calls")
}

// Acceptance 6 (envmap part), across processes: two rssh-like processes
// (this test binary re-executed) that miss a cold cache at once run op once.
func TestResolverSingleFlightProcesses(t *testing.T) {
	s := newSandbox(t)
	startKeyring(t, s)
	f := newFakeOp(t, "Admin")
	f.Write(t, "hold", "")
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 2)
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), "RSSH_ENVMAP_HELPER=1",
			"HELPER_OP="+f.Path, "HELPER_VAULT="+f.Vault, "HELPER_ENV=production", "HELPER_LOCKS="+s.Locks)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		go func() {
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, stderr.String())
			}
			done <- result{out, err}
		}()
	}
	releaseWhenBothIn(t, f, lockPath(s.Locks, f.Vault, "production"))
	sum := sha256.Sum256([]byte(f.Tokens["production"]))
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Fatalf("helper: %v", r.err)
		}
		if got := strings.TrimSpace(string(r.out)); !strings.HasSuffix(got, hex.EncodeToString(sum[:])) {
			t.Errorf("helper printed %q, want the token's sha256", got)
		}
	}
	wantRuns(t, f, 1, "two processes with a cold cache")
	f.CheckArgv(t)
}

// TestHelperProcess is one rssh-like process for the test above: it resolves
// a token with the real keyring cache and prints its sha256 (never the
// token).
func TestHelperProcess(t *testing.T) {
	if os.Getenv("RSSH_ENVMAP_HELPER") != "1" {
		t.Skip("helper process for TestResolverSingleFlightProcesses")
	}
	cache := OpenCache(nil)
	if _, ok := cache.(*secretServiceCache); !ok {
		fmt.Fprintf(os.Stderr, "helper: no Secret Service cache: %v\n", cache)
		os.Exit(3)
	}
	r := &Resolver{Cache: cache, Source: NewOpSource(OpOptions{Path: os.Getenv("HELPER_OP")}), LockDir: os.Getenv("HELPER_LOCKS")}
	tok, err := r.Token(context.Background(), os.Getenv("HELPER_VAULT"), os.Getenv("HELPER_ENV"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		os.Exit(4)
	}
	sum := sha256.Sum256(tok.Reveal())
	fmt.Println(hex.EncodeToString(sum[:]))
	os.Exit(0)
}

// releaseWhenBothIn waits until op has started for one caller and the other
// caller is blocked on the lock (the kernel lists it as a waiter in
// /proc/locks, so it has already missed the cache), then lets op answer.
func releaseWhenBothIn(t *testing.T, f *testenv.FakeOp, lock string) {
	t.Helper()
	testenv.WaitFile(t, filepath.Join(f.Dir, "started.*"), 20*time.Second)
	fi, err := os.Stat(lock)
	if err != nil {
		t.Fatal(err)
	}
	ino := ":" + strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10) + " "
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Skipf("no /proc/locks to see the waiter: %v", err)
		}
		waiting := false
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "->") && strings.Contains(l, "FLOCK") && strings.Contains(l, ino) {
				waiting = true
			}
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second caller never blocked on %s:\n%s", lock, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.Write(t, "release", "")
}

// A failing cache is a miss, never a failure: the token still arrives.
func TestResolverCacheErrorIsAMiss(t *testing.T) {
	f := newFakeOp(t, "Admin")
	r := &Resolver{Cache: brokenCache{}, Source: fastOp(f), LockDir: filepath.Join(t.TempDir(), "locks")}
	tok, err := r.Token(context.Background(), f.Vault, "development")
	wantToken(t, tok, err, f.Tokens["development"])
}

type brokenCache struct{ noCache }

func (brokenCache) Get(string, string) (Token, time.Time, bool, error) {
	return Token{}, time.Time{}, false, errors.New("keyring went away")
}
func (brokenCache) Put(string, string, Token, time.Time) error {
	return errors.New("keyring went away")
}

// Bad input fails before anything runs.
func TestResolverRejectsBadInput(t *testing.T) {
	f := newFakeOp(t, "Admin")
	r := &Resolver{Source: fastOp(f), LockDir: filepath.Join(t.TempDir(), "locks")}
	if _, err := r.Token(context.Background(), "Admin", "Prod"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("invalid env: %v", err)
	}
	if _, err := r.Token(context.Background(), "", "prod"); !errors.Is(err, ErrNoVault) {
		t.Errorf("no vault: %v", err)
	}
	wantRuns(t, f, 0, "bad input")
}
