// Command bridge benchmarks `rssh --bridge` against going without it, in
// one run on one machine, alternating the two so machine noise hits both:
//
//	go run ./bench/bridge        # as root on Debian, after scripts/setup
//
// Figures (issue 5, acceptance 7): ed25519 signatures per second through
// the bridge vs straight to OpenSSH's ssh-agent, sequential and 8 parallel
// (target >= 0.9x); the latency the bridge adds to one signature (median,
// target <= 100 µs); relay throughput of `rssh --bridge HOST PORT` vs
// `socat - TCP:HOST:PORT`, both directions (target >= 0.95x); and the
// bridge daemon's RSS idle and with 1,000 idle connections (targets <= 15
// MB and <= 60 MB).
package main

import (
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/internal/testenv"
)

func main() {
	signs := flag.Int("signs", 2000, "signatures per round")
	rounds := flag.Int("rounds", 3, "rounds per figure")
	mib := flag.Int("mib", 512, "relay transfer size in MiB")
	conns := flag.Int("conns", 1000, "idle connections for the RSS figure")
	flag.Parse()

	testenv.RunStandalone("bench-bridge", func(tb *testenv.Standalone) error { return run(tb, *signs, *rounds, *mib, *conns) })
}

func run(tb *testenv.Standalone, signs, rounds, mib, nconns int) error {
	dir := tb.TempDir()
	rssh, err := testenv.BuildRSSH(dir)
	if err != nil {
		return err
	}
	socat := testenv.Need(tb, "socat", "socat")
	testenv.Need(tb, "ssh-add", "openssh-client")
	ag := testenv.StartAgent(tb)
	key := testenv.NewKey(tb, dir, "id_ed25519")
	ag.Add(tb, key)

	sock := filepath.Join(dir, "bridge.sock")
	bridge := exec.Command(rssh, "--bridge", "--listen", sock, "--upstream", ag.Sock)
	// The audit lines go to a file, as with launchd's StandardErrorPath: the
	// bridge pays for writing them, and no reader of a pipe competes with
	// the signing client for the CPU (io.Discard would be such a reader,
	// inside this process).
	auditLog, err := os.Create(filepath.Join(dir, "bridge.log"))
	if err != nil {
		return err
	}
	defer auditLog.Close()
	bridge.Stderr = auditLog
	if err := startServer(tb, bridge, sock); err != nil {
		return err
	}
	// Let the probe's connection close, then take the idle figure.
	idleRSS, err := settledRSS(bridge.Process.Pid)
	if err != nil {
		return err
	}

	fmt.Printf("agent bridge vs direct (ssh-agent, ed25519), %d signatures x %d rounds, %d MiB relay x %d rounds\n\n",
		signs, rounds, mib, rounds)
	fmt.Printf("%-40s %12s %12s %8s %s\n", "figure", "direct", "bridge", "ratio", "target")

	// The same hop through socat, a relay in C that only copies bytes: what
	// any process between ssh and the agent costs on this machine, the
	// floor under the bridge's figures.
	socatSock := filepath.Join(dir, "socat.sock")
	relay := exec.Command(socat, "UNIX-LISTEN:"+socatSock+",fork,backlog=128", "UNIX-CONNECT:"+ag.Sock)
	if err := startServer(tb, relay, socatSock); err != nil {
		return err
	}

	// Signatures per second, sequential and 8 parallel, alternating.
	data := make([]byte, 128)
	rand.Read(data)
	paths := map[string]string{"direct": ag.Sock, "bridge": sock, "socat": socatSock}
	for _, par := range []int{1, 8} {
		rates := map[string][]float64{}
		var lat map[string][]time.Duration
		for i := 0; i < rounds+1; i++ {
			for _, name := range []string{"direct", "bridge", "socat"} {
				r, l, err := signRate(paths[name], key.PublicKey, data, signs, par)
				if err != nil {
					return fmt.Errorf("signing via %s: %w", name, err)
				}
				if i == 0 {
					continue // warm-up
				}
				rates[name] = append(rates[name], r)
				if par == 1 {
					if lat == nil {
						lat = map[string][]time.Duration{}
					}
					lat[name] = append(lat[name], l...)
				}
			}
		}
		d, b, s := testenv.Median(rates["direct"]), testenv.Median(rates["bridge"]), testenv.Median(rates["socat"])
		fmt.Printf("%-40s %12s %12s %8.2f %s\n", fmt.Sprintf("signatures/s, %d in parallel", par),
			fmt.Sprintf("%.0f/s", d), fmt.Sprintf("%.0f/s", b), b/d, ">= 0.90x")
		fmt.Printf("%-40s %12s %12s %8.2f %s\n", "  reference: socat relay instead", "",
			fmt.Sprintf("%.0f/s", s), s/d, "")
		if par == 1 {
			ld, lb, ls := testenv.Median(lat["direct"]), testenv.Median(lat["bridge"]), testenv.Median(lat["socat"])
			fmt.Printf("%-40s %12s %12s %8s %s\n", "sign latency (median)", us(ld), us(lb),
				"+"+us(lb-ld), "<= +100 µs")
			fmt.Printf("%-40s %12s %12s %8s %s\n", "  reference: socat relay instead", "", us(ls),
				"+"+us(ls-ld), "")
		}
	}

	// Relay throughput vs socat, up (stdin to the server) and down.
	srv, err := newSink()
	if err != nil {
		return err
	}
	defer srv.Close()
	relays := []struct {
		name string
		argv []string
	}{
		{"socat", []string{socat, "-", "TCP:" + srv.addr()}},
		{"rssh", []string{rssh, "--bridge", "-F", "none", "127.0.0.1", strconv.Itoa(srv.port())}},
	}
	for _, dir := range []string{"up", "down"} {
		rates := map[string][]float64{}
		for i := 0; i < rounds+1; i++ {
			for _, r := range relays {
				rate, err := relayRate(srv, r.argv, dir, mib)
				if err != nil {
					return fmt.Errorf("%s %s: %w", r.name, dir, err)
				}
				if i > 0 {
					rates[r.name] = append(rates[r.name], rate)
				}
			}
		}
		s, b := testenv.Median(rates["socat"]), testenv.Median(rates["rssh"])
		fmt.Printf("%-40s %12s %12s %8.2f %s\n", fmt.Sprintf("relay %s, %d MiB (vs socat)", dir, mib),
			fmt.Sprintf("%.0f MB/s", s), fmt.Sprintf("%.0f MB/s", b), b/s, ">= 0.95x")
	}

	// RSS with idle connections.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	baseFDs := countFDs(bridge.Process.Pid)
	for i := 0; i < nconns; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return fmt.Errorf("idle connection %d: %w", i, err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for countFDs(bridge.Process.Pid) < baseFDs+nconns {
		if time.Now().After(deadline) {
			return fmt.Errorf("the bridge accepted %d of %d connections", countFDs(bridge.Process.Pid)-baseFDs, nconns)
		}
		time.Sleep(10 * time.Millisecond)
	}
	busyRSS, err := settledRSS(bridge.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("%-40s %12s %12s %8s %s\n", "bridge RSS, idle", "", mb(idleRSS), "", "<= 15 MB")
	fmt.Printf("%-40s %12s %12s %8s %s\n", fmt.Sprintf("bridge RSS, %d idle connections", nconns), "", mb(busyRSS), "", "<= 60 MB")
	return nil
}

// startServer starts cmd, waits until it listens on sock, and kills it at
// cleanup.
func startServer(tb *testenv.Standalone, cmd *exec.Cmd, sock string) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return testenv.WaitSocket(sock, exited, 10*time.Second)
}

// signRate signs n times over par connections to the agent at path and
// returns signatures per second and, sequentially, each signature's time.
func signRate(path string, key ssh.PublicKey, data []byte, n, par int) (float64, []time.Duration, error) {
	clients := make([]agent.ExtendedAgent, par)
	for i := range clients {
		c, err := net.Dial("unix", path)
		if err != nil {
			return 0, nil, err
		}
		defer c.Close()
		clients[i] = agent.NewClient(c)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lat  []time.Duration
		ferr error
	)
	start := time.Now()
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func(c agent.ExtendedAgent, count int) {
			defer wg.Done()
			for i := 0; i < count; i++ {
				t0 := time.Now()
				if _, err := c.Sign(key, data); err != nil {
					mu.Lock()
					ferr = err
					mu.Unlock()
					return
				}
				if par == 1 {
					lat = append(lat, time.Since(t0))
				}
			}
		}(clients[w], n/par)
	}
	wg.Wait()
	if ferr != nil {
		return 0, nil, ferr
	}
	return float64(n/par*par) / time.Since(start).Seconds(), lat, nil
}

// relayRate moves mib MiB through the relay command, up (its stdin to the
// sink server) or down (the server to its stdout), and returns MB/s,
// timed until the last byte arrived.
func relayRate(srv *sink, argv []string, dir string, mib int) (float64, error) {
	total := int64(mib) << 20
	srv.prepare(dir, total)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var elapsed time.Duration
	if dir == "up" {
		go func() {
			buf := make([]byte, 1<<20)
			for sent := int64(0); sent < total; sent += int64(len(buf)) {
				if _, err := stdin.Write(buf); err != nil {
					break
				}
			}
			stdin.Close()
		}()
		go io.Copy(io.Discard, stdout)
		if err := srv.wait(30 * time.Second); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, fmt.Errorf("%w: %s", err, stderr.String())
		}
		elapsed = time.Since(start)
	} else {
		// The clock stops at the last byte, not at EOF: socat lingers 0.5 s
		// (its -t) after the server's EOF before closing its stdout.
		n, _ := io.CopyN(io.Discard, stdout, total)
		elapsed = time.Since(start)
		stdin.Close()
		io.Copy(io.Discard, stdout)
		if n != total {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, fmt.Errorf("got %d of %d bytes: %s", n, total, stderr.String())
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	return float64(total) / elapsed.Seconds() / 1e6, nil
}

// sink is a TCP server on 127.0.0.1 that, per connection, either counts
// what it receives ("up") or sends a number of bytes and closes ("down").
type sink struct {
	l     net.Listener
	mu    sync.Mutex
	dir   string
	total int64
	done  chan struct{}
}

func newSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{l: l}
	go s.serve()
	return s, nil
}

func (s *sink) addr() string { return s.l.Addr().String() }
func (s *sink) port() int    { return s.l.Addr().(*net.TCPAddr).Port }
func (s *sink) Close() error { return s.l.Close() }
func (s *sink) prepare(dir string, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir, s.total, s.done = dir, total, make(chan struct{})
}

func (s *sink) wait(d time.Duration) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("the sink did not get every byte within %v", d)
	}
}

func (s *sink) serve() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		dir, total, done := s.dir, s.total, s.done
		s.mu.Unlock()
		go func() {
			defer c.Close()
			if dir == "up" {
				n, _ := io.CopyN(io.Discard, c, total)
				if n == total {
					close(done)
				}
				io.Copy(io.Discard, c) // until the relay half-closes
				return
			}
			buf := make([]byte, 1<<20)
			for sent := int64(0); sent < total; sent += int64(len(buf)) {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

// settledRSS is the process's resident set once the garbage collector has
// had a moment after the last activity: the lowest of a few readings.
func settledRSS(pid int) (int64, error) {
	best := int64(-1)
	for i := 0; i < 5; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if best < 0 || kb < best {
					best = kb
				}
			}
		}
		time.Sleep(100 * time.Millisecond) // a reading interval, not synchronisation
	}
	return best, nil
}

func countFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1000) }
func mb(kb int64) string        { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }
