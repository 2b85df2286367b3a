package agentbridge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/sys/unix"
)

// wantClosed waits (bounded) until the bridge closes c, reading and
// discarding any replies first.
func wantClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the bridge did not close the connection within %v", within)
	}
}

// stillServes checks that a fresh client lists and signs.
func stillServes(t *testing.T, b *testBridge, f *fixture) {
	t.Helper()
	nc, err := net.Dial("unix", b.sock)
	if err != nil {
		t.Fatalf("the bridge no longer accepts: %v", err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := agent.NewClient(nc).Sign(f.k1.PublicKey, []byte("still here")); err != nil {
		t.Fatalf("the bridge no longer signs: %v", err)
	}
}

// Garbage, an oversized or empty length prefix close that connection only;
// an established client on another connection carries on (acceptance 3).
func TestGarbageClosesThatConnectionOnly(t *testing.T) {
	f := newFixture(t)
	b := startBridge(t, Config{Upstream: f.agent.Sock, IdleTimeout: 10 * time.Second}, nil)
	bystander := client(t, b.sock)
	if _, err := bystander.List(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var heap runtime.MemStats
	runtime.ReadMemStats(&heap)
	allocBefore := heap.TotalAlloc

	for name, input := range map[string][]byte{
		"4 GiB prefix":            {0xff, 0xff, 0xff, 0xff, 11},
		"just over the cap":       binary.BigEndian.AppendUint32(nil, DefaultMaxMessage+1),
		"empty message":           {0, 0, 0, 0},
		"random bytes":            random,
		"truncated sign":          frame([]byte{msgSignRequest, 0, 0, 0, 9, 1}),
		"trailing bytes":          frame([]byte{msgRequestIdentities, 0}),
		"bad bool in bind":        frame(append([]byte{msgExtension, 0, 0, 0, 24}, append([]byte(sessionBindExtension), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7)...)),
		"extension name overflow": {0, 0, 0, 5, msgExtension, 0xff, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("unix", b.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go c.Write(input) // the bridge may close before reading it all
			wantClosed(t, c, 5*time.Second)
		})
	}
	runtime.ReadMemStats(&heap)
	if grew := heap.TotalAlloc - allocBefore; grew > 16<<20 {
		t.Errorf("refusing garbage allocated %d bytes: a length prefix was trusted", grew)
	}
	b.audit.wantAudit(t, map[string]any{"op": "close", "decision": "refused", "reason": "message of 4294967295 bytes exceeds*"})
	if _, err := bystander.Sign(f.k1.PublicKey, []byte("bystander")); err != nil {
		t.Fatalf("a client on another connection was disturbed: %v", err)
	}
	stillServes(t, b, f)

	// Framed random messages: each gets a reply or closes its connection;
	// none hangs the bridge.
	c, err := net.Dial("unix", b.sock)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		msg := make([]byte, 1+rng.IntN(200))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(frame(msg)); err == nil {
			if _, err = readMessage(c, DefaultMaxMessage); err == nil {
				continue
			}
		}
		c.Close()
		if c, err = net.Dial("unix", b.sock); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	stillServes(t, b, f)
	if got := upstreamKeys(t, f.agent.Sock); len(got) != 3 {
		t.Errorf("upstream keys after garbage: %v", got)
	}
}

// A half-written message, and a connection that sends nothing, time out
// (acceptance 3).
func TestHalfWrittenMessageTimesOut(t *testing.T) {
	f := newFixture(t)
	const idle = 300 * time.Millisecond
	b := startBridge(t, Config{Upstream: f.agent.Sock, IdleTimeout: idle}, nil)
	for name, input := range map[string][]byte{
		"half a message": append(binary.BigEndian.AppendUint32(nil, 100), msgSignRequest, 0, 0),
		"half a prefix":  {0, 0},
		"nothing":        nil,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("unix", b.sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if _, err := c.Write(input); err != nil {
				t.Fatal(err)
			}
			wantClosed(t, c, 5*time.Second)
			if d := time.Since(start); d < idle {
				t.Errorf("closed after %v, before the idle timeout %v", d, idle)
			}
		})
	}
	b.audit.wantAudit(t, map[string]any{"op": "close", "decision": "refused", "reason": "timed out*"})
	stillServes(t, b, f)
}

// 200 clients sign at once; all get valid signatures (acceptance 3).
func TestConcurrentSigners(t *testing.T) {
	f := newFixture(t)
	b := startBridge(t, Config{Upstream: f.agent.Sock}, nil)
	const clients, signs = 200, 3
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("unix", b.sock)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			c := agent.NewClient(nc)
			for j := range signs {
				data := []byte("client " + strconv.Itoa(i) + " sign " + strconv.Itoa(j))
				sig, err := c.Sign(f.k1.PublicKey, data)
				if err == nil {
					err = f.k1.PublicKey.Verify(data, sig)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent signer: %v", err)
	}
	b.waitConns(t, 0)
	if n := strings.Count(b.audit.String(), `"result":"signed"`); n != clients*signs {
		t.Errorf("%d signature audit lines, want %d", n, clients*signs)
	}
}

// memInUse is the heap and stack the runtime holds after a collection.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// vmRSS is this process's resident set in KiB, from /proc.
func vmRSS(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// 1,000 idle connections cost little and do not stop a new client
// (acceptance 3).
func TestManyIdleConnections(t *testing.T) {
	const idle = 1000
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Both ends live in this process, plus the upstream's.
	if need := uint64(3*idle + 200); lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < need {
			t.Skipf("RLIMIT_NOFILE %d is below the %d this test needs: %v", lim.Cur, need, err)
		}
	}
	f := newFixture(t)
	b := startBridge(t, Config{Upstream: f.agent.Sock, MaxConns: idle + 10}, nil)
	memBefore, rssBefore := memInUse(), vmRSS(t)
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.Dial("unix", b.sock)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	b.waitConns(t, idle)
	stillServes(t, b, f)
	memAfter, rssAfter := memInUse(), vmRSS(t)
	perConn := (int64(memAfter) - int64(memBefore)) / idle
	t.Logf("%d idle connections: heap+stack %+d KiB (%d bytes each, both ends), VmRSS %+d KiB",
		idle, (int64(memAfter)-int64(memBefore))>>10, perConn, rssAfter-rssBefore)
	if perConn > 32<<10 {
		t.Errorf("each idle connection costs %d bytes of heap and stack, want at most 32 KiB", perConn)
	}
	if !raceEnabled && rssBefore > 0 && rssAfter-rssBefore > 48<<10 {
		t.Errorf("VmRSS grew by %d KiB for %d idle connections", rssAfter-rssBefore, idle)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	b.waitConns(t, 0)
}

// Connections over MaxConns are closed at once, with an audit line, and the
// bridge serves again when one leaves (acceptance 3).
func TestMaxConnsClosesExcess(t *testing.T) {
	f := newFixture(t)
	const max = 5
	b := startBridge(t, Config{Upstream: f.agent.Sock, MaxConns: max}, nil)
	var held []agent.ExtendedAgent
	for range max {
		c := client(t, b.sock)
		if _, err := c.List(); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra, err := net.Dial("unix", b.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	wantClosed(t, extra, 5*time.Second)
	b.audit.wantAudit(t, map[string]any{"op": "connect", "decision": "refused", "reason": "too many connections (max 5)", "uid": os.Getuid()})
	if _, err := held[0].List(); err != nil {
		t.Fatalf("a held connection broke: %v", err)
	}
}

// upstreamAgent is an ssh-agent the test can kill and restart on the same
// socket path, as 1Password does when it restarts.
type upstreamAgent struct {
	sock string
	cmd  *exec.Cmd
	done chan struct{}
}

func (u *upstreamAgent) start(t *testing.T, keys ...*testenv.Key) {
	t.Helper()
	u.cmd = exec.Command("ssh-agent", "-D", "-a", u.sock)
	u.done = make(chan struct{})
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(u.cmd, u.done)
	if err := testenv.WaitSocket(u.sock, u.done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if out, _, err := run(t, []string{"SSH_AUTH_SOCK=" + u.sock}, "ssh-add", k.Path); err != nil {
			t.Fatalf("ssh-add: %v\n%s", err, out)
		}
	}
}

func (u *upstreamAgent) kill() {
	u.cmd.Process.Kill()
	<-u.done
	os.Remove(u.sock) // SIGKILL leaves the socket file
}

// The upstream agent killed: the bridge answers failure at once; restarted
// on the same path: the same client connection is served again
// (acceptance 3).
func TestUpstreamRestart(t *testing.T) {
	testenv.Need(t, "ssh-agent", "openssh-client")
	dir := t.TempDir()
	k := testenv.NewKey(t, dir, "k")
	u := &upstreamAgent{sock: filepath.Join(testenv.ShareDir(t), "agent.sock")}
	u.start(t, k)
	t.Cleanup(u.kill)
	b := startBridge(t, Config{Upstream: u.sock}, nil)
	c := client(t, b.sock)
	if keys, err := c.List(); err != nil || len(keys) != 1 {
		t.Fatalf("list before the restart: %v, %v", keys, err)
	}

	u.kill()
	for _, c := range []agent.ExtendedAgent{c, client(t, b.sock)} {
		start := time.Now()
		if _, err := c.List(); err == nil {
			t.Fatal("list succeeded with the upstream agent down")
		}
		if _, err := c.Sign(k.PublicKey, []byte("x")); err == nil {
			t.Fatal("sign succeeded with the upstream agent down")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("failure answers took %v with the upstream down, want at once", d)
		}
	}
	b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "allowed", "result": "upstream unreachable*"})

	u.start(t, k)
	if keys, err := c.List(); err != nil || len(keys) != 1 {
		t.Fatalf("list on the same connection after the restart: %v, %v", keys, err)
	}
	if _, err := c.Sign(k.PublicKey, []byte("after")); err != nil {
		t.Fatalf("sign after the restart: %v", err)
	}
}
