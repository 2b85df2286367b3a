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
//
// The signing figures are printed next to socat's, a relay in C that only
// copies bytes between the two sockets: the cost of any process between
// ssh and the agent on this machine. Issue 13's target for the hop is
// judged in the same run: sequential signing no slower than through socat,
// and latency added at most socat's + 20 µs.
//
// -variant NAME=PATH (repeatable) measures the bridge of another rssh
// binary alongside, to compare versions of the bridge code in one run;
// -mib 0 and -conns 0 skip the relay and RSS figures.
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
	var variants []variant
	flag.Func("variant", "NAME=PATH: also measure the bridge of the rssh binary at PATH (repeatable)", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=PATH, got %q", v)
		}
		variants = append(variants, variant{name, path})
		return nil
	})
	flag.Parse()

	testenv.RunStandalone("bench-bridge", func(tb *testenv.Standalone) error {
		return run(tb, *signs, *rounds, *mib, *conns, variants)
	})
}

// variant is another rssh binary whose bridge is measured alongside.
type variant struct{ name, path string }

// Issue 13's target for the bridge hop, against socat in the same run.
const (
	targetLatencyOverSocat = 20 * time.Microsecond
)

func run(tb *testenv.Standalone, signs, rounds, mib, nconns int, variants []variant) error {
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
	paths := map[string]string{"direct": ag.Sock, "bridge": sock}
	names := []string{"direct", "bridge", "socat"}
	for i, v := range variants {
		vsock := filepath.Join(dir, fmt.Sprintf("variant%d.sock", i))
		cmd := exec.Command(v.path, "--bridge", "--listen", vsock, "--upstream", ag.Sock)
		vlog, err := os.Create(filepath.Join(dir, fmt.Sprintf("variant%d.log", i)))
		if err != nil {
			return err
		}
		defer vlog.Close()
		cmd.Stderr = vlog
		if err := startServer(tb, cmd, vsock); err != nil {
			return fmt.Errorf("variant %s: %w", v.name, err)
		}
		paths["bridge "+v.name] = vsock
		names = append(names, "bridge "+v.name)
	}
	// Let the probe's connection close, then take the idle figure.
	idleRSS, err := settledRSS(bridge.Process.Pid)
	if err != nil {
		return err
	}

	fmt.Printf("agent bridge vs direct (ssh-agent, ed25519), %d signatures x %d rounds, %d MiB relay x %d rounds\n\n",
		signs, rounds, mib, rounds)

	// The same hop through socat, a relay in C that only copies bytes: what
	// any process between ssh and the agent costs on this machine, the
	// floor under the bridge's figures.
	socatSock := filepath.Join(dir, "socat.sock")
	relay := exec.Command(socat, "UNIX-LISTEN:"+socatSock+",fork,backlog=128", "UNIX-CONNECT:"+ag.Sock)
	if err := startServer(tb, relay, socatSock); err != nil {
		return err
	}

	// Signatures per second, sequential and 8 parallel, alternating, and
	// each sequential signature's time.
	data := make([]byte, 128)
	rand.Read(data)
	paths["socat"] = socatSock
	rates := map[int]map[string][]float64{1: {}, 8: {}}
	lat := map[string][]time.Duration{}
	// Rounds alternate the paths (and sequential with parallel), so that
	// the machine's noise falls on all of them alike.
	for i := 0; i < rounds+1; i++ {
		for _, par := range []int{1, 8} {
			for _, name := range names {
				r, l, err := signRate(paths[name], key.PublicKey, data, signs, par)
				if err != nil {
					return fmt.Errorf("signing via %s: %w", name, err)
				}
				if i == 0 {
					continue // warm-up
				}
				rates[par][name] = append(rates[par][name], r)
				lat[name] = append(lat[name], l...)
			}
		}
	}
	fmt.Printf("%-34s %12s %10s %10s %12s %s\n", "signing (median of rounds)", "signatures/s", "vs direct", "vs socat", "latency", "added")
	for _, par := range []int{1, 8} {
		fmt.Printf("%d in parallel:\n", par)
		d, s := testenv.Median(rates[par]["direct"]), testenv.Median(rates[par]["socat"])
		ld, ls := testenv.Median(lat["direct"]), testenv.Median(lat["socat"])
		for _, name := range names {
			r := testenv.Median(rates[par][name])
			row := fmt.Sprintf("  %-32s %10.0f/s %9.2fx %9.2fx", name, r, r/d, r/s)
			if par == 1 {
				l := testenv.Median(lat[name])
				row += fmt.Sprintf(" %12s %s", us(l), plusUS(l-ld))
			}
			fmt.Println(row)
		}
		if par != 1 {
			fmt.Printf("  %-32s %10s %9s %s\n", "target: bridge", "", ">= 0.90x", "")
			continue
		}
		fmt.Printf("  %-32s %10s %9s %9s %12s %s\n", "target: bridge", "", ">= 0.90x", ">= 1.00x", "",
			"<= socat's "+plusUS(ls-ld)+" + "+us(targetLatencyOverSocat))
		for _, name := range names {
			if !strings.HasPrefix(name, "bridge") {
				continue
			}
			r, l := testenv.Median(rates[1][name]), testenv.Median(lat[name])
			fast, near := r >= s, l-ld <= ls-ld+targetLatencyOverSocat
			verdict := "MET"
			if !fast || !near {
				verdict = "MISSED"
			}
			fmt.Printf("issue 13 target, %s: %s (sequential %.0f/s vs socat %.0f/s: %s; added %s vs socat %s + %s: %s)\n",
				name, verdict, r, s, okWord(fast), plusUS(l-ld), plusUS(ls-ld), us(targetLatencyOverSocat), okWord(near))
		}
		fmt.Println()
	}
	if mib <= 0 && nconns <= 0 {
		return nil
	}
	fmt.Printf("\n%-40s %12s %12s %8s %s\n", "figure", "socat", "rssh", "ratio", "target")

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
		if mib <= 0 {
			break
		}
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
	if nconns <= 0 {
		return nil
	}
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

func plusUS(d time.Duration) string {
	if d < 0 {
		return "-" + us(-d)
	}
	return "+" + us(d)
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "no"
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1000) }
func mb(kb int64) string        { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }
