package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// With the server frozen (every process of the connection stopped, so TCP
// still accepts bytes but nothing answers), rssh gives up after
// ServerAliveInterval × (ServerAliveCountMax+1) and exits 255 with ssh's
// line, rather than hanging on a request that will never be answered.
func TestKeepaliveFrozenServer(t *testing.T) {
	w := newWorld(t, "", "")
	const interval, countMax = time.Second, 2
	p := w.start("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "target", "echo ready; exec sleep 120")
	if !pollUntil(15*time.Second, func() bool { return strings.Contains(p.stdout.String(), "ready") || p.exited() }) || p.exited() {
		t.Fatalf("session did not start: %q %q", p.stdout.String(), p.err.String())
	}
	// Let a keepalive or two be answered first, so the count is known to reset.
	if !pollUntil(5*time.Second, func() bool { return strings.Count(w.sshd.Log(), "keepalive@openssh.com") >= 2 }) {
		t.Fatalf("no keepalive reached the server:\n%s", w.sshd.Log())
	}
	pids := descendants(w.sshd.PID())
	if len(pids) == 0 {
		t.Fatal("no per-connection sshd process found")
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %d: %v", pid, err)
		}
	}
	frozen := time.Now()
	limit := interval*(countMax+1) + 5*time.Second
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("rssh still running %v after the server froze; stderr %q", limit, p.err.String())
	}
	elapsed := time.Since(frozen)
	if p.code != 255 || !strings.Contains(p.err.String(), "Timeout, server 127.0.0.1 not responding.") {
		t.Fatalf("want exit 255 and the timeout line, got %d %q", p.code, p.err.String())
	}
	// It must not give up before the server has missed countMax keepalives.
	if elapsed < interval*(countMax-1) {
		t.Fatalf("gave up after %v, before %d intervals", elapsed, countMax-1)
	}
	t.Logf("gave up %v after the freeze", elapsed.Round(10*time.Millisecond))
}
