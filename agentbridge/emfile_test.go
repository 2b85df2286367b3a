//go:build linux

package agentbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh/agent"
)

// emfileChildEnv, set in this test binary's environment, makes
// TestAcceptSurvivesEMFILE the bridge process: "LISTEN UPSTREAM SPARE".
const emfileChildEnv = "RSSH_AGENTBRIDGE_TEST_EMFILE_CHILD"

// emfileChild serves a bridge with RLIMIT_NOFILE lowered to what it has
// open plus spare, logging JSON to stderr, until SIGTERM. The limit is set
// in a child process because it applies to the whole process.
func emfileChild(t *testing.T, arg string) {
	var listen, upstream string
	var spare uint64
	if _, err := fmt.Sscan(arg, &listen, &upstream, &spare); err != nil {
		t.Fatalf("%s=%q: %v", emfileChildEnv, arg, err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, err := New(Config{Listen: listen, Upstream: upstream, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// Go raised the soft limit to the hard one at start; lower it again.
	lim := syscall.Rlimit{Cur: uint64(len(fds)) + spare, Max: uint64(len(fds)) + spare}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	log.Info("child limit", "nofile", lim.Cur)
	if err := b.Serve(ctx); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// The bridge listener survives running out of file descriptors (issue 13,
// item 3): with RLIMIT_NOFILE lowered and the descriptors taken by held
// connections, it logs one warning, backs off (a bounded number of failed
// accepts, no spinning), and once they are freed it serves the peer that
// waited in the backlog and a new one.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	if arg := os.Getenv(emfileChildEnv); arg != "" {
		emfileChild(t, arg)
		return
	}
	f := newFixture(t)
	sock := filepath.Join(t.TempDir(), "bridge.sock")
	const spare = 6 // the listener and a few connections
	var log testenv.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptSurvivesEMFILE$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", emfileChildEnv, sock, f.agent.Sock, spare))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("bridge child's output:\n%s", log.String())
		}
	}()
	if err := testenv.WaitSocket(sock, exited, 30*time.Second); err != nil {
		t.Fatalf("bridge child: %v", err)
	}

	// Take every descriptor: more idle connections than the limit allows.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 4 * spare {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("connection %d: %v", len(held), err)
		}
		held = append(held, c)
	}
	if !log.WaitFor("pausing new connections", 30*time.Second) {
		t.Fatal("the bridge never ran out of descriptors")
	}
	if !strings.Contains(log.String(), "too many open files") {
		t.Fatal("the accept error is not EMFILE")
	}
	// A peer arriving now waits in the backlog.
	patient, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()
	// A window for a spinning accept loop to show in the count below; not
	// synchronisation.
	time.Sleep(300 * time.Millisecond)
	for _, c := range held {
		c.Close()
	}
	held = nil

	// The bridge closes the held connections as it reads their EOFs, while
	// it may already serve the patient peer: until then, dialling the
	// upstream agent can still fail with EMFILE, and the peer gets a
	// failure answer on a connection that stays up.
	signs := func(c net.Conn, who string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		ac := agent.NewClient(c)
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := ac.Sign(f.k1.PublicKey, []byte(who))
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", who, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	signs(patient, "the peer that waited in the backlog")
	fresh, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	signs(fresh, "a new peer after the shortage")

	// The shortage is over once accepting has gone shortageQuiet without a
	// failure.
	if !log.WaitFor("accepting new connections again", shortageQuiet+30*time.Second) {
		t.Fatal("no line says the bridge accepts again")
	}
	var warned, overs int
	var recovered map[string]any
	for _, l := range testenv.JSONLines(log.String()) {
		switch l["msg"] {
		case "accept failed; pausing new connections until it passes":
			warned++
		case "accepting new connections again":
			recovered = l
			overs++
		}
	}
	if warned != 1 || overs != 1 {
		t.Errorf("%d warnings and %d recoveries for one shortage, want 1 each", warned, overs)
	}
	fails, _ := recovered["failed_accepts"].(float64)
	ns, _ := recovered["paused"].(float64) // slog's JSON: a Duration in nanoseconds
	paused := time.Duration(ns)
	// The backoff doubles from 5 ms to maxAcceptBackoff: ~8 failures in the
	// first 1.3 s, then one a second. A spinning loop fails thousands of
	// times.
	if limit := 10 + int(paused/maxAcceptBackoff); fails < 1 || int(fails) > limit {
		b, _ := json.Marshal(recovered)
		t.Errorf("%v failed accepts in %v, want 1 to %d: %s", fails, paused, limit, b)
	}
	t.Logf("shortage: %v failed accepts over %v", fails, paused)
}
