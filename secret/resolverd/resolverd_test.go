package resolverd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/internal/testenv"
	"github.com/rssh/rssh/secret"
)

// The test binary doubles as the daemon (Client.Command points at it) and
// as a session leader that calls it; helper modes are chosen by these
// variables, which only this test binary reads.
const (
	envDaemon = "RSSH_RESOLVERD_TEST_DAEMON"
	envLeader = "RSSH_RESOLVERD_TEST_LEADER"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envDaemon) != "":
		err := RunDaemon(DaemonOptions{
			Backend:    "fake",
			NewBackend: func(tok envmap.Token) (secret.Backend, error) { return newFake(tok), nil },
			Idle:       30 * time.Second,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "daemon:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case os.Getenv(envLeader) != "":
		os.Exit(leader())
	}
	os.Exit(m.Run())
}

// nasty is in every fake value: the wire must carry it byte for byte.
const nasty = "$(touch X)`id`'\"%\n\xc3\xa9"

// fake is a backend that counts its calls: value = ref#call#tokenhash+nasty.
type fake struct {
	tokHash string
	calls   atomic.Int64
	batches chan []string
}

func newFake(tok envmap.Token) *fake {
	h := sha256.Sum256(tok.Reveal())
	return &fake{tokHash: hex.EncodeToString(h[:4]), batches: make(chan []string, 100)}
}

func (f *fake) Name() string { return "fake" }

func (f *fake) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	n := f.calls.Add(1)
	select {
	case f.batches <- refs:
	default:
	}
	out := make([][]byte, len(refs))
	for i, r := range refs {
		if strings.Contains(r, "/fail/") {
			return nil, &secret.Error{Kind: secret.ErrRateLimited, RetryIn: 7 * time.Second, Refs: []string{r}, Msg: r + ": rate limited", Hint: "wait"}
		}
		out[i] = []byte(fmt.Sprintf("%s#%d#%s%s", r, n, f.tokHash, nasty))
	}
	return out, nil
}

func tokenOf(s string) envmap.Token { return envmap.NewToken([]byte(s)) }

// runDir is a private XDG_RUNTIME_DIR.
func runDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// startServer runs a Server in this process at the path c would use.
func startServer(t *testing.T, c *Client, b secret.Backend, now func() time.Time, idle time.Duration) (*Server, <-chan struct{}) {
	t.Helper()
	path, err := c.Path()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(true)
	s := &Server{Backend: b, Auth: authFor(c.Token), UID: os.Geteuid(), TTL: time.Minute, Idle: idle, now: now}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if err := s.Serve(ctx, ln, nil); err != nil {
			t.Errorf("Serve: %v", err)
		}
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return s, done
}

// A value is resolved once, answered from memory within its TTL, resolved
// again after it; a mixed batch sends only what is missing; errors keep
// their kind, wait, references and hint across the socket.
func TestCacheTTLAndErrors(t *testing.T) {
	dir := runDir(t)
	c := &Client{Token: tokenOf("tok-A"), Backend: "fake", Getenv: func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": dir}[k] }}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFake(c.Token)
	startServer(t, c, f, clock, time.Hour)
	ctx := context.Background()
	a, b := "op://v/i/a", "op://v/i/b"

	v1, err := c.ResolveAll(ctx, []string{a})
	if err != nil {
		t.Fatal(err)
	}
	want := a + "#1#" + f.tokHash + nasty
	if string(v1[0]) != want {
		t.Fatalf("value %q, want %q", v1[0], want)
	}
	v2, err := c.ResolveAll(ctx, []string{a, a})
	if err != nil || string(v2[0]) != want || string(v2[1]) != want || f.calls.Load() != 1 {
		t.Fatalf("cached: %q %v, %d backend calls", v2, err, f.calls.Load())
	}
	<-f.batches
	if _, err := c.ResolveAll(ctx, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	if batch := <-f.batches; len(batch) != 1 || batch[0] != b {
		t.Errorf("mixed batch sent %q to the backend, want only %q", batch, b)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute) // past the TTL
	mu.Unlock()
	v3, err := c.ResolveAll(ctx, []string{a})
	if err != nil || !strings.HasPrefix(string(v3[0]), a+"#3#") {
		t.Errorf("after the TTL: %q %v", v3, err)
	}

	_, err = c.ResolveAll(ctx, []string{"op://v/fail/x"})
	var se *secret.Error
	if !errors.As(err, &se) || !errors.Is(err, secret.ErrRateLimited) || se.RetryIn != 7*time.Second || se.Hint != "wait" || len(se.Refs) != 1 {
		t.Errorf("error across the socket: %#v", err)
	}
	if _, err := c.ResolveAll(ctx, []string{"op://only-two/parts"}); err == nil {
		t.Error("a malformed reference resolved")
	}
}

// The daemon answers only its own uid: another user (uid 65534) that
// reaches the socket with a valid request gets nothing.
func TestPeerUIDRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	setpriv := testenv.Need(t, "setpriv", "util-linux")
	socat := testenv.Need(t, "socat", "socat")
	dir := t.TempDir()
	// Let the other user reach the socket: the uid check alone must refuse it.
	os.Chmod(filepath.Dir(dir), 0o711)
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "s.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o666)
	tok := tokenOf("tok-B")
	var logBuf testenv.Buffer
	s := &Server{Backend: newFake(tok), Auth: authFor(tok), UID: os.Geteuid(), Idle: time.Hour,
		Log: slog.New(slog.NewTextHandler(&logBuf, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-done }()

	p, _ := encodeRequest(&request{op: opResolve, auth: authFor(tok), refs: []string{"op://v/i/f"}})
	var frame bytes.Buffer
	writeFrame(&frame, p)
	run := func(argv ...string) []byte {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(frame.Bytes())
		out, _ := cmd.Output()
		return out
	}
	if out := run(socat, "-t5", "-", "UNIX-CONNECT:"+path); !bytes.Contains(out, []byte("op://v/i/f#1#")) {
		t.Fatalf("root (the daemon's uid) got no value: %q", out)
	}
	if out := run(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", socat, "-t5", "-", "UNIX-CONNECT:"+path); len(out) != 0 {
		t.Errorf("uid 65534 got an answer: %q", out)
	}
	if !logBuf.WaitFor("uid=65534", 5*time.Second) || !strings.Contains(logBuf.String(), "peer refused") {
		t.Errorf("no refusal logged: %s", logBuf.String())
	}
	// Another token on the same socket (by the right uid) gets nothing.
	p, _ = encodeRequest(&request{op: opResolve, auth: authFor(tokenOf("tok-other")), refs: []string{"op://v/i/f"}})
	frame.Reset()
	writeFrame(&frame, p)
	if out := run(socat, "-t5", "-", "UNIX-CONNECT:"+path); len(out) != 0 {
		t.Errorf("another token got an answer: %q", out)
	}
}

func TestIdleTimeout(t *testing.T) {
	dir := runDir(t)
	c := &Client{Token: tokenOf("tok-C"), Backend: "fake", Getenv: func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": dir}[k] }}
	_, done := startServer(t, c, newFake(c.Token), nil, 300*time.Millisecond)
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle server did not exit")
	}
	path, _ := c.Path()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// leader is a session leader (started with setsid by the test) that asks
// the resolver twice through two Clients, starting it the first time, and
// prints what it got; then it waits to be killed.
func leader() int {
	tok := tokenOf(os.Getenv("LEADER_TOKEN"))
	self, _ := os.Executable()
	mk := func() *Client {
		var env []string
		for _, kv := range scrubEnv(os.Environ()) {
			if !strings.HasPrefix(kv, "LEADER_TOKEN=") && !strings.HasPrefix(kv, envLeader+"=") {
				env = append(env, kv)
			}
		}
		return &Client{Token: tok, Backend: "fake", Command: []string{self}, Env: append(env, envDaemon+"=1")}
	}
	var wg sync.WaitGroup
	pids := make([]int, 4)
	for i := range pids { // concurrent first callers: one daemon
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid, err := mk().Ping(context.Background())
			if err != nil {
				fmt.Println("error:", err)
			}
			pids[i] = pid
		}()
	}
	wg.Wait()
	for i := 0; i < 2; i++ {
		v, err := mk().ResolveAll(context.Background(), []string{"op://v/i/f"})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Printf("value %q\n", v[0])
	}
	path, _ := mk().Path()
	fmt.Printf("pids %v\npath %s\n", pids, path)
	os.Stdout.Sync()
	bufio.NewReader(os.Stdin).ReadString('\n') // until killed
	return 0
}

// Started on demand by the first caller and reused by the next, with the
// token on a pipe (not in argv, the environment or any file); dies with
// its session's leader.
func TestDaemonLifecycle(t *testing.T) {
	dir := runDir(t)
	token := "ops_fake-token-" + strconv.Itoa(os.Getpid()) + "-never-on-disk"
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envLeader+"=1", "LEADER_TOKEN="+token, secret.TokenEnv+"="+token, "XDG_RUNTIME_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	var out testenv.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer cmd.Process.Kill()
	if !out.WaitFor("path ", 30*time.Second) {
		t.Fatalf("leader: %s", out.String())
	}
	lines := out.String()
	t.Logf("leader:\n%s", lines)
	if strings.Contains(lines, "error:") {
		t.Fatalf("leader failed: %s", lines)
	}
	h := sha256.Sum256([]byte(token))
	want := fmt.Sprintf("%q", "op://v/i/f#1#"+hex.EncodeToString(h[:4])+nasty)
	if strings.Count(lines, "value "+want) != 2 {
		t.Errorf("want the same value (backend call #1, the token's hash) twice: %s", lines)
	}
	var pids [4]int
	fmt.Sscanf(lines[strings.Index(lines, "pids ["):], "pids [%d %d %d %d]", &pids[0], &pids[1], &pids[2], &pids[3])
	pid := pids[0]
	for _, p := range pids {
		if p != pid || p == 0 {
			t.Fatalf("concurrent first callers reached different daemons: %v", pids)
		}
	}
	path := strings.TrimSpace(lines[strings.Index(lines, "path ")+5:])
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %s: %v %v", path, st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket dir: %v %v", st.Mode(), err)
	}
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Fatalf("daemon %d: %v", pid, err)
		}
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("the token is in the daemon's %s", f)
		}
	}
	if sid, _ := getsid(pid); sid != cmd.Process.Pid {
		t.Errorf("daemon's session %d, want the leader's %d", sid, cmd.Process.Pid)
	}
	testenv.ScanForSecrets(t, map[string]string{"test": token}, dir)

	// The session ends: the daemon follows and removes its socket.
	cmd.Process.Kill()
	<-exited
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d outlived its session leader", pid)
		}
		time.Sleep(20 * time.Millisecond) // polling a process's exit
	}
	for _, p := range []string{path, path + ".lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}

// A command that cannot start the daemon is a clear error at once.
func TestStartFailure(t *testing.T) {
	dir := runDir(t)
	for _, argv := range [][]string{{"/bin/false"}, {filepath.Join(dir, "missing")}} {
		c := &Client{Token: tokenOf("tok-D"), Backend: "fake", Command: argv, StartTimeout: 5 * time.Second,
			Getenv: func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": dir}[k] }}
		start := time.Now()
		_, err := c.ResolveAll(context.Background(), []string{"op://v/i/f"})
		if !errors.Is(err, secret.ErrNoBackend) || !strings.Contains(err.Error(), "starting the daemon") || time.Since(start) > 5*time.Second {
			t.Errorf("%v: %v after %v", argv, err, time.Since(start))
		}
	}
	c := &Client{Token: tokenOf("tok-D"), Backend: "fake", Getenv: func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": dir}[k] }}
	if _, err := c.ResolveAll(context.Background(), []string{"op://v/i/f"}); !errors.Is(err, secret.ErrNoBackend) {
		t.Errorf("no command: %v", err)
	}
}

// Dir refuses a directory another user could have made or may enter.
func TestDirChecks(t *testing.T) {
	x := runDir(t)
	d, err := Dir(func(string) string { return x })
	if err != nil || d != filepath.Join(x, "rssh") {
		t.Fatalf("Dir: %q %v", d, err)
	}
	if st, _ := os.Stat(d); st.Mode().Perm() != 0o700 {
		t.Errorf("made %v", st.Mode())
	}
	os.Chmod(d, 0o755)
	if err := checkDir(d, os.Geteuid(), true); err == nil {
		t.Error("a 0755 directory accepted")
	}
	if err := checkDir(d, os.Geteuid()+1, true); err == nil {
		t.Error("another user's directory accepted")
	}
	link := filepath.Join(x, "link")
	os.Symlink(d, link)
	if err := checkDir(link, os.Geteuid(), false); err == nil {
		t.Error("a symlink accepted")
	}
	if a, b := socketName(tokenOf("a"), "sdk", 5), socketName(tokenOf("b"), "sdk", 5); a == b {
		t.Error("two tokens share a socket name")
	}
	if a, b := socketName(tokenOf("a"), "sdk", 5), socketName(tokenOf("a"), "sdk", 6); a == b {
		t.Error("two sessions share a socket name")
	}
	if strings.Contains(socketName(tokenOf("secret-token"), "sdk", 5), "secret") {
		t.Error("the socket name shows the token")
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z' // a zombie has exited
}

func getsid(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// state ppid pgrp session
	return strconv.Atoi(f[3])
}

// BenchmarkCacheHit is one Client.ResolveAll answered from the daemon's
// memory: a socket round trip, the uid check and the copy.
func BenchmarkCacheHit(b *testing.B) {
	dir := b.TempDir()
	os.Chmod(dir, 0o700)
	c := &Client{Token: tokenOf("tok-bench"), Backend: "fake", Getenv: func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": dir}[k] }}
	path, err := c.Path()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{Backend: newFake(c.Token), Auth: authFor(c.Token), UID: os.Geteuid(), Idle: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln, nil); close(done) }()
	defer func() { cancel(); <-done }()
	refs := []string{"op://v/i/a", "op://v/i/b", "op://v/i/c"}
	if _, err := c.ResolveAll(ctx, refs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.ResolveAll(ctx, refs); err != nil {
			b.Fatal(err)
		}
	}
}

// A dead daemon's socket (SIGKILL leaves it) does not stop the next
// caller: the new daemon takes the lock, removes it and listens.
func TestStaleSocket(t *testing.T) {
	dir := runDir(t)
	self, _ := os.Executable()
	c := &Client{Token: tokenOf("tok-E"), Backend: "fake", Command: []string{self},
		Env:    append(scrubEnv(os.Environ()), envDaemon+"=1", "XDG_RUNTIME_DIR="+dir),
		Getenv: func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": dir}[k] }}
	path, err := c.Path()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, nothing listens: ECONNREFUSED
	v, err := c.ResolveAll(context.Background(), []string{"op://v/i/f"})
	if err != nil || !strings.HasPrefix(string(v[0]), "op://v/i/f#1#") {
		t.Fatalf("after a stale socket: %q %v", v, err)
	}
	pid, err := c.Ping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d ignored SIGTERM", pid)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's exit
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after SIGTERM: %v", err)
	}
}
