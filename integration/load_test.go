package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// Load (issue 13): many connections at once through -L, -D and -R, each
// carrying loadBytes each way with both directions' digests checked, and
// many rssh processes against one sshd. Every loop is bounded in count and
// every connection by a deadline.
const (
	loadBytes = 1 << 20
	// A connection fails when it makes no progress for loadIdle, or is not
	// done after loadDeadline. All 500 uploads share one SSH connection, so
	// a connection's first echoed byte can wait behind most of 500 MiB: on
	// a 2-CPU machine shared with other work that took over 90 s (the
	// whole run ~3 minutes, rssh using ~11 s of CPU: slow, not stalled).
	loadIdle     = 4 * time.Minute
	loadDeadline = 8 * time.Minute
)

// progressConn moves its deadline on with every read and write: loadIdle
// from now, never past the connection's end.
type progressConn struct {
	net.Conn
	end time.Time
}

func withProgressDeadline(c net.Conn) *progressConn {
	return &progressConn{Conn: c, end: time.Now().Add(loadDeadline)}
}

func (p *progressConn) next() time.Time {
	d := time.Now().Add(loadIdle)
	if d.After(p.end) {
		return p.end
	}
	return d
}

func (p *progressConn) Read(b []byte) (int, error) {
	p.Conn.SetReadDeadline(p.next())
	return p.Conn.Read(b)
}

func (p *progressConn) Write(b []byte) (int, error) {
	p.Conn.SetWriteDeadline(p.next())
	return p.Conn.Write(b)
}

func (p *progressConn) CloseWrite() error {
	if hc, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return nil
}

// seededStream writes size pseudo-random bytes (seeded, so no buffer of the
// whole payload is kept) and returns their digest.
func seededStream(w io.Writer, seed uint64, size int) ([32]byte, error) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	src := rand.NewChaCha8(key)
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for sent := 0; sent < size; {
		n := min(len(buf), size-sent)
		src.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return [32]byte{}, err
		}
		sent += n
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// echoExchange sends loadBytes on c (to an echo server behind the
// forward), half-closes, and wants exactly the same bytes back.
func echoExchange(nc net.Conn, seed uint64) error {
	c := withProgressDeadline(nc)
	var sent [32]byte
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		sent, werr = seededStream(c, seed, loadBytes)
		if werr == nil {
			werr = c.CloseWrite()
		}
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	<-done
	switch {
	case werr != nil:
		return fmt.Errorf("sending: %v", werr)
	case rerr != nil:
		return fmt.Errorf("receiving after %d bytes: %v", n, rerr)
	case n != loadBytes:
		return fmt.Errorf("%d bytes came back, want %d", n, loadBytes)
	case !bytes.Equal(h.Sum(nil), sent[:]):
		return errors.New("the bytes that came back differ from those sent")
	}
	return nil
}

// runConcurrent runs n at once and returns how many failed, logging the
// first few failures.
func runConcurrent(t *testing.T, n int, f func(i int) error) int {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f(i)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("connection failed: %v", err)
			}
		}
	}
	return failed
}

// socks5Connect opens a SOCKS5 CONNECT to 127.0.0.1:port through the proxy
// at addr.
func socks5Connect(addr string, port int) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(loadIdle))
	req := append([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1}, byte(port>>8), byte(port))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	ans := make([]byte, 2+10)
	if _, err := io.ReadFull(c, ans); err != nil || ans[0] != 5 || ans[1] != 0 || ans[2] != 5 || ans[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("SOCKS5 answer %v, %v", ans, err)
	}
	return c, nil
}

// loadRSSH is the rssh the load tests drive: under -race one built with
// -race as well, so that its forwarding code is checked under this load.
func loadRSSH(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return rsshBin
	}
	bin := filepath.Join(t.TempDir(), "rssh-race")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, "github.com/rssh/rssh/cmd/rssh").CombinedOutput(); err != nil {
		t.Fatalf("building rssh with -race: %v\n%s", err, out)
	}
	return bin
}

// cpuTime is the user+system CPU time process pid has used so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return time.Duration(u+k) * 10 * time.Millisecond
}

func TestLoadForwards(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: minutes on 2 CPUs (run without -short)")
	}
	// At DEBUG2 sshd logs every window adjustment of 500 channels: that,
	// not rssh, would be the load.
	w := newWorldSSHD(t, testenv.SSHDOptions{LogLevel: "INFO"})
	bin := loadRSSH(t)
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	for _, c := range []struct {
		kind string
		n    int
	}{{"L", 500}, {"D", 500}, {"R", 200}} {
		t.Run(fmt.Sprintf("%s%d", c.kind, c.n), func(t *testing.T) {
			port := strconv.Itoa(freeLocalPort(t))
			addr := "127.0.0.1:" + port
			spec := port + ":127.0.0.1:" + strconv.Itoa(echoPort)
			if c.kind == "D" {
				spec = port
			}
			p := w.startBin(bin, "-N", "-"+c.kind, spec, "target")
			dialWhenReady(t, p, "tcp", addr, 15*time.Second).Close()
			start := time.Now()
			failed := runConcurrent(t, c.n, func(i int) error {
				var conn net.Conn
				var err error
				if c.kind == "D" {
					conn, err = socks5Connect(addr, echoPort)
				} else {
					conn, err = net.Dial("tcp", addr)
				}
				if err != nil {
					return err
				}
				defer conn.Close()
				return echoExchange(conn, uint64(i))
			})
			t.Logf("-%s: %d connections × %d KiB each way in %v, rssh (race %v) used %v CPU", c.kind, c.n, loadBytes>>10,
				time.Since(start).Round(time.Millisecond), raceEnabled, cpuTime(p.cmd.Process.Pid))
			if failed > 0 {
				t.Fatalf("%d of %d connections through -%s lost or corrupted; rssh said %q", failed, c.n, c.kind, p.err.String())
			}
			if p.exited() {
				t.Fatalf("rssh exited %d: %q", p.code, p.err.String())
			}
			if strings.Contains(p.err.String(), "DATA RACE") {
				t.Fatalf("rssh under load: %s", p.err.String())
			}
		})
	}
}

// 100 rssh processes at once against one sshd (MaxStartups raised), each
// sending 64 KiB to sha256sum on the server and getting the right digest.
func TestLoadConcurrentProcesses(t *testing.T) {
	const n, size = 100, 64 << 10
	if testing.Short() {
		t.Skip("load test (run without -short)")
	}
	w := newWorldSSHD(t, testenv.SSHDOptions{LogLevel: "INFO", Extra: "MaxStartups 200"})
	start := time.Now()
	failed := runConcurrent(t, n, func(i int) error {
		var in bytes.Buffer
		sum, _ := seededStream(&in, uint64(i), size)
		cmd := exec.Command(rsshBin, "-F", w.config, "target", "sha256sum")
		cmd.Env = w.env
		cmd.Stdin = &in
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("rssh %d: %v: %s", i, err, strings.TrimSpace(errb.String()))
			}
		case <-time.After(loadDeadline):
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("rssh %d: still running after %v", i, loadDeadline)
		}
		if want := hex.EncodeToString(sum[:]); !strings.HasPrefix(out.String(), want) {
			return fmt.Errorf("rssh %d: sha256sum said %q, want %s", i, out.String(), want)
		}
		return nil
	})
	t.Logf("%d concurrent rssh processes in %v", n, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		t.Fatalf("%d of %d rssh processes failed", failed, n)
	}
}
