package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// fetchRig is a FetchConfig with a fake clock: sleeps are recorded, not
// slept, jitter is the middle of its range, and the target counts as
// tmpfs.
type fetchRig struct {
	mu     sync.Mutex
	sleeps []time.Duration
	writes int
}

func (r *fetchRig) config(c FetchConfig) FetchConfig {
	c.sleep = func(ctx context.Context, d time.Duration) error {
		r.mu.Lock()
		r.sleeps = append(r.sleeps, d)
		r.mu.Unlock()
		return ctx.Err()
	}
	c.jitter = func() float64 { return 0.5 }
	c.fsType = func(string) (int64, error) { return tmpfsMagic, nil }
	c.write = func(path string, data []byte, mode os.FileMode) error {
		r.mu.Lock()
		r.writes++
		r.mu.Unlock()
		return WriteFileAtomic(path, data, mode)
	}
	return c
}

func trickyFetch(t *testing.T, dir string) (map[string][]byte, []FetchVar, string) {
	mark := filepath.Join(dir, "X")
	tricky := testenv.TrickyValues(mark)
	values := map[string][]byte{}
	var vars []FetchVar
	for name, v := range tricky {
		values["op://vault/item/"+name] = v
		vars = append(vars, FetchVar{"S_" + strings.ToUpper(name), "op://vault/item/" + name})
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	return values, vars, mark
}

// readBack reads FILE as systemd does and as `sh -c '. FILE; printf %s "$NAME"'`.
func readBack(t *testing.T, file string, want map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sd := testenv.ParseSystemdEnvFile(data)
	if len(sd) != len(want) {
		t.Errorf("systemd reads %d variables, want %d", len(sd), len(want))
	}
	for name, v := range want {
		if sd[name] != string(v) {
			t.Errorf("systemd reads %s as %q, want %q", name, sd[name], v)
		}
		out, err := exec.Command("sh", "-c", `. "$1"; eval "printf %s \"\$$2\""`, "sh", file, name).Output()
		if err != nil || !bytes.Equal(out, v) {
			t.Errorf("sh reads %s as %q (%v), want %q", name, out, err, v)
		}
	}
}

// A backend that fails three times then answers: the file is written
// once, after the fourth attempt, the backoff 1 s, 2 s, 4 s between.
func TestFetchRetriesThenWritesOnce(t *testing.T) {
	dir := t.TempDir()
	values, vars, mark := trickyFetch(t, dir)
	out := filepath.Join(dir, "run", "svc", "env")
	fake := newFake(values)
	fake.fail, fake.err = 3, errors.New("connection reset by peer")
	rig := &fetchRig{}
	var log bytes.Buffer
	c := rig.config(FetchConfig{Out: out, Vars: vars, Backend: fake, Log: &log})
	inner := c.sleep
	c.sleep = func(ctx context.Context, d time.Duration) error {
		if _, err := os.Stat(out); err == nil {
			t.Error("the file exists before the last attempt")
		}
		return inner(ctx, d)
	}
	if err := Fetch(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Calls()); n != 4 {
		t.Errorf("%d attempts, want 4", n)
	}
	if rig.writes != 1 {
		t.Errorf("file written %d times, want once", rig.writes)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(rig.sleeps, want) {
		t.Errorf("backoff %v, want %v", rig.sleeps, want)
	}
	if strings.Count(log.String(), "failed: connection reset by peer; retrying in") != 3 {
		t.Errorf("log:\n%s", log.String())
	}
	want := map[string][]byte{}
	for _, v := range vars {
		want[v.Name] = values[v.Ref]
	}
	readBack(t, out, want)
	if _, err := os.Stat(mark); err == nil {
		t.Error("a value ran: X was created")
	}
}

// The backoff doubles up to its cap, each delay within ±25 %.
func TestFetchBackoff(t *testing.T) {
	for _, j := range []float64{0, 0.5, 0.999} {
		c := FetchConfig{jitter: func() float64 { return j }}
		var got []time.Duration
		for a := 1; a <= 11; a++ {
			got = append(got, c.backoff(a))
		}
		for i, base := range []time.Duration{1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30} {
			base *= time.Second
			if got[i] < base*3/4 || got[i] > base*5/4 {
				t.Errorf("jitter %v: delay %d = %v, want %v ±25%%", j, i+1, got[i], base)
			}
		}
	}
}

// A backend that always fails: N attempts, the last error, the old file
// untouched and no temporary left.
func TestFetchAlwaysFailingKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	old := []byte("OLD=\"kept\"\n")
	os.WriteFile(out, old, 0o400)
	n := 0
	fb := &countingBackend{f: func() error {
		n++
		return &Error{Kind: ErrTransient, Msg: fmt.Sprintf("op://v/i/f: attempt %d: i/o timeout", n)}
	}}
	rig := &fetchRig{}
	err := Fetch(context.Background(), rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Attempts: 5, Backend: fb}))
	if err == nil {
		t.Fatal("Fetch succeeded")
	}
	if n != 5 || len(rig.sleeps) != 4 || rig.writes != 0 {
		t.Errorf("%d attempts, %d sleeps, %d writes; want 5, 4, 0", n, len(rig.sleeps), rig.writes)
	}
	if want := "after 5 attempts: op://v/i/f: attempt 5: i/o timeout"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, ErrTransient) {
		t.Errorf("error %v lost its kind", err)
	}
	b, _ := os.ReadFile(out)
	st, _ := os.Stat(out)
	if !bytes.Equal(b, old) || st.Mode().Perm() != 0o400 {
		t.Errorf("old file now %q %v", b, st.Mode())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "env" && e.Name() != ".env.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// eventBackend notes each call before the backend sees it.
type eventBackend struct {
	*fakeBackend
	note func()
}

func (b *eventBackend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	b.note()
	return b.fakeBackend.ResolveAll(ctx, refs)
}

type countingBackend struct{ f func() error }

func (b *countingBackend) Name() string { return "counting" }
func (b *countingBackend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	return nil, b.f()
}

// What another attempt cannot fix ends the fetch at once.
func TestFetchPermanentErrors(t *testing.T) {
	for _, err := range []error{
		&Error{Kind: ErrNotFound, Msg: "not found"},
		&Error{Kind: ErrAuth, Msg: "bad token"},
		&Error{Kind: ErrNoBackend, Msg: "no op"},
	} {
		n := 0
		rig := &fetchRig{}
		got := Fetch(context.Background(), rig.config(FetchConfig{Out: filepath.Join(t.TempDir(), "env"), Vars: []FetchVar{{"A", "op://v/i/f"}},
			Backend: &countingBackend{f: func() error { n++; return err }}}))
		if n != 1 || len(rig.sleeps) != 0 || !errors.Is(got, err) {
			t.Errorf("%v: %d attempts, %v", err, n, got)
		}
	}
	// Bad input: the backend is never asked.
	for _, vars := range [][]FetchVar{{{"9A", "op://v/i/f"}}, {{"A", "op://v/i/f"}, {"A", "op://v/i/g"}}, {{"A", "op:/v/i"}}, {{"A", "plain"}}} {
		fake := newFake(nil)
		rig := &fetchRig{}
		if err := Fetch(context.Background(), rig.config(FetchConfig{Out: filepath.Join(t.TempDir(), "env"), Vars: vars, Backend: fake})); err == nil || len(fake.Calls()) != 0 {
			t.Errorf("%v: %v, %d calls", vars, err, len(fake.Calls()))
		}
	}
}

// 1Password's rate limit is waited out, for as long as it says.
func TestFetchWaitsOutRateLimit(t *testing.T) {
	limited := func(in time.Duration) error {
		return &Error{Kind: ErrRateLimited, RetryIn: in, Msg: "op://v/i/f: 1Password is rate-limiting this service account: (429) Too Many Requests"}
	}
	for _, tc := range []struct {
		retryIn  time.Duration
		wantWait time.Duration
	}{
		{2 * time.Minute, 2*time.Minute + 6*time.Second}, // +10 % × jitter 0.5
		{0, time.Minute + 3*time.Second},
		{time.Second, 1050 * time.Millisecond}, // 1 s + 5 %, and never less than the backoff
	} {
		fake := newFake(map[string][]byte{"op://v/i/f": []byte("v")})
		fake.fail, fake.err = 1, limited(tc.retryIn)
		rig := &fetchRig{}
		if err := Fetch(context.Background(), rig.config(FetchConfig{Out: filepath.Join(t.TempDir(), "env"), Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake})); err != nil {
			t.Fatal(err)
		}
		if len(rig.sleeps) != 1 || rig.sleeps[0] < tc.wantWait-time.Second/5 || rig.sleeps[0] > tc.wantWait {
			t.Errorf("retry in %v: waited %v, want about %v", tc.retryIn, rig.sleeps, tc.wantWait)
		}
	}
	// Told to wait longer than --max-wait: no second request, a clear
	// error with what 1Password said.
	fake := newFake(nil)
	fake.fail, fake.err = 1, limited(58*time.Minute)
	rig := &fetchRig{}
	err := Fetch(context.Background(), rig.config(FetchConfig{Out: filepath.Join(t.TempDir(), "env"), Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake}))
	var h interface{ HintText() string }
	if err == nil || len(fake.Calls()) != 1 || len(rig.sleeps) != 0 || !strings.Contains(err.Error(), "wait 58m0s, more than --max-wait 15m0s") || !errors.As(err, &h) {
		t.Errorf("58 minutes asked: %v, %d calls, sleeps %v", err, len(fake.Calls()), rig.sleeps)
	}
}

// Two fetches of one file: the second waits on the lock while the first
// resolves, and resolves only after the first has written the file.
// The order is read from the lock, not from timing.
func TestFetchSerialises(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	var mu sync.Mutex
	var events []string
	event := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	enter := make(chan string, 2)
	gate := make(chan struct{})
	a := newFake(map[string][]byte{"op://v/i/f": []byte("from A")})
	a.name, a.enter, a.gate = "A", enter, gate
	b := newFake(map[string][]byte{"op://v/i/f": []byte("from B")})
	b.name, b.enter = "B", enter
	waiting := make(chan struct{})
	config := func(be *fakeBackend, onWait func()) FetchConfig {
		rig := &fetchRig{}
		c := rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"V", "op://v/i/f"}}, Backend: &eventBackend{be, func() { event(be.name + " resolves") }}})
		c.lockWaiting = onWait
		c.write = func(path string, data []byte, mode os.FileMode) error {
			event(be.name + " writes")
			return WriteFileAtomic(path, data, mode)
		}
		return c
	}
	errs := make(chan error, 2)
	go func() { errs <- Fetch(context.Background(), config(a, func() { t.Error("A waited on the lock") })) }()
	if who := <-enter; who != "A" {
		t.Fatalf("%s resolved first", who)
	}
	go func() { errs <- Fetch(context.Background(), config(b, func() { event("B waits"); close(waiting) })) }()
	select {
	case <-waiting:
	case who := <-enter:
		t.Fatalf("%s resolved while A held the lock", who)
	case <-time.After(10 * time.Second):
		t.Fatal("B never reached the lock")
	}
	close(gate)
	if who := <-enter; who != "B" {
		t.Fatalf("%s resolved", who)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"A resolves", "B waits", "A writes", "B resolves", "B writes"}
	if !slices.Equal(events, want) {
		t.Errorf("events %q, want %q", events, want)
	}
	if b, _ := os.ReadFile(out); string(b) != "V=\"from B\"\n" {
		t.Errorf("file %q", b)
	}
}

// The real statfs: a directory on disk is refused (and not created), one
// on tmpfs is used; --allow-disk writes to disk.
func TestFetchRefusesDisk(t *testing.T) {
	disk := t.TempDir()
	if typ, _ := statfsType(disk); typ == tmpfsMagic || typ == ramfsMagic {
		t.Skipf("%s is on tmpfs here", disk)
	}
	fake := newFake(map[string][]byte{"op://v/i/f": []byte("v")})
	out := filepath.Join(disk, "svc", "env")
	err := Fetch(context.Background(), FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake})
	var h interface{ HintText() string }
	if err == nil || !strings.Contains(err.Error(), "is not on tmpfs or ramfs") || !errors.As(err, &h) || !strings.Contains(h.HintText(), "--allow-disk") {
		t.Errorf("disk target: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(out)); err == nil || len(fake.Calls()) != 0 {
		t.Errorf("refused, yet the directory was made or the backend asked (%d calls)", len(fake.Calls()))
	}
	if err := Fetch(context.Background(), FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake, AllowDisk: true}); err != nil {
		t.Errorf("--allow-disk: %v", err)
	}

	if typ, err := statfsType("/dev/shm"); err != nil || typ != tmpfsMagic {
		t.Skipf("/dev/shm is not tmpfs here")
	}
	shm, err := os.MkdirTemp("/dev/shm", "rssh-fetch-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	if err := Fetch(context.Background(), FetchConfig{Out: filepath.Join(shm, "a", "env"), Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake}); err != nil {
		t.Errorf("tmpfs target: %v", err)
	}
}

// New directories 0700, the file 0400 or --file-mode; an existing
// directory keeps its mode.
func TestFetchModes(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	fake := newFake(map[string][]byte{"op://v/i/f": []byte("v")})
	rig := &fetchRig{}
	out := filepath.Join(dir, "a", "b", "env")
	if err := Fetch(context.Background(), rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake})); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o755, filepath.Join(dir, "a"): 0o700, filepath.Join(dir, "a", "b"): 0o700, out: 0o400} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode().Perm(), err, want)
		}
	}
	if err := Fetch(context.Background(), rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake, FileMode: 0o640})); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o640 {
		t.Errorf("--file-mode 0640: %v", st.Mode().Perm())
	}
	if err := Fetch(context.Background(), rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake, FileMode: 0o4755})); err == nil {
		t.Error("a setuid mode was accepted")
	}
}

// A fetch stopped (the unit stopped, a start timeout) ends without
// writing; a temporary file a killed fetch left behind is removed by the
// next one.
func TestFetchStoppedAndStaleTemps(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	ctx, cancel := context.WithCancel(context.Background())
	rig := &fetchRig{}
	c := rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}},
		Backend: &countingBackend{f: func() error { return errors.New("connection reset") }}})
	c.sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	if err := Fetch(ctx, c); !errors.Is(err, context.Canceled) || rig.writes != 0 {
		t.Errorf("stopped: %v, %d writes", err, rig.writes)
	}
	fake := newFake(map[string][]byte{"op://v/i/f": []byte("v")})
	ctx, cancel = context.WithCancel(context.Background())
	c = rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: &eventBackend{fake, cancel}})
	if err := Fetch(ctx, c); !errors.Is(err, context.Canceled) || rig.writes != 0 {
		t.Errorf("stopped while resolving: %v, %d writes", err, rig.writes)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a stopped fetch wrote the file")
	}

	stale := filepath.Join(dir, ".env.tmp-12345")
	other := filepath.Join(dir, ".other.tmp-1")
	os.WriteFile(stale, []byte("A=\"half"), 0o400)
	os.WriteFile(other, nil, 0o400)
	if err := Fetch(context.Background(), rig.config(FetchConfig{Out: out, Vars: []FetchVar{{"A", "op://v/i/f"}}, Backend: fake})); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the stale temporary is still there")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("another file's temporary was removed")
	}
}
