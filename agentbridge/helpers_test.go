package agentbridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// otherUID is "another user" in these tests: nobody on Debian.
const otherUID = 65534

// auditLog captures the bridge's slog JSON lines.
type auditLog struct {
	testenv.Buffer
}

// lines is every audit JSON line so far; a line that is not JSON fails.
func (a *auditLog) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(a.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); l != "" && err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, l)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// wantAudit waits (bounded) for an audit line with the given fields (see
// testenv.JSONMatches): lines about a connection the bridge closes are
// written just before it closes.
func (a *auditLog) wantAudit(t testing.TB, want map[string]any) map[string]any {
	t.Helper()
	a.lines(t)
	return testenv.WantJSONLine(t, a.String, want)
}

type testBridge struct {
	*Bridge
	sock  string
	audit *auditLog
}

// startBridge serves cfg (Listen defaults to a socket in a shareDir) until
// the test ends, and checks then that Serve returned nil and removed its
// socket. adjust, if given, runs before Serve (to set test seams).
func startBridge(t testing.TB, cfg Config, adjust func(*Bridge)) *testBridge {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = filepath.Join(testenv.ShareDir(t), "bridge.sock")
	}
	audit := &auditLog{}
	cfg.Log = slog.New(slog.NewJSONHandler(audit, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if adjust != nil {
		adjust(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- b.Serve(ctx); close(exited) }()
	if err := testenv.WaitSocket(cfg.Listen, exited, 10*time.Second); err != nil {
		cancel()
		t.Fatalf("bridge: %v %v", err, <-done)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
		if _, err := os.Lstat(cfg.Listen); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s left behind: %v", cfg.Listen, err)
		}
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
			t.Logf("audit log (last %d of %d lines):\n%s", min(40, len(lines)), len(lines), strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	tb := &testBridge{Bridge: b, sock: cfg.Listen, audit: audit}
	tb.waitConns(t, 0) // the readiness probe's connection
	return tb
}

// waitConns waits (bounded) until the bridge serves exactly n connections.
func (b *testBridge) waitConns(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.numConns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("bridge serves %d connections, want %d", b.numConns(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client is an x/crypto agent client on a fresh connection to sock.
func client(t testing.TB, sock string) agent.ExtendedAgent {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return agent.NewClient(c)
}

// upstreamKeys lists the upstream agent directly.
func upstreamKeys(t testing.TB, sock string) []string {
	t.Helper()
	keys, err := client(t, sock).List()
	if err != nil {
		t.Fatalf("listing upstream %s: %v", sock, err)
	}
	var fps []string
	for _, k := range keys {
		fps = append(fps, ssh.FingerprintSHA256(k))
	}
	return fps
}

func fp(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// newRSAKey writes a 2048-bit RSA key, to show that signature flags
// (rsa-sha2-256/512) pass through the bridge unchanged.
func newRSAKey(t testing.TB, dir, name string) *testenv.Key {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k := &testenv.Key{Path: filepath.Join(dir, name), Signer: signer, PublicKey: signer.PublicKey()}
	if err := os.WriteFile(k.Path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// run runs a command with a minimal environment and returns its output.
func run(t testing.TB, env []string, name string, args ...string) (string, *exec.Cmd, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Start()
	if err == nil {
		timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
		err = cmd.Wait()
		timer.Stop()
	}
	return out.String(), cmd, err
}

// runAsOther runs a command as uid/gid 65534 with setpriv.
func runAsOther(t testing.TB, env []string, name string, args ...string) (string, *exec.Cmd, error) {
	t.Helper()
	testenv.Need(t, "setpriv", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a command as another user")
	}
	a := append([]string{fmt.Sprintf("--reuid=%d", otherUID), fmt.Sprintf("--regid=%d", otherUID), "--clear-groups", name}, args...)
	return run(t, env, "setpriv", a...)
}

// selfComm is this process's command name as the bridge sees it.
func selfComm(t testing.TB) string {
	t.Helper()
	return commandName(os.Getpid())
}
