package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// proc is rssh running in the background (-N forwards, a long session).
type proc struct {
	cmd         *exec.Cmd
	stdout, err *syncBuffer
	done        chan struct{}
	code        int
}

func (w *world) start(args ...string) *proc {
	w.t.Helper()
	return w.startBin(rsshBin, args...)
}

// startBin is start for another client (OpenSSH's ssh, to compare).
func (w *world) startBin(bin string, args ...string) *proc {
	w.t.Helper()
	return w.startArgv(append([]string{bin, "-F", w.config}, args...)...)
}

// startArgv starts the command line argv as start does.
func (w *world) startArgv(argv ...string) *proc {
	w.t.Helper()
	p := &proc{stdout: &syncBuffer{}, err: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = w.env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.err
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	w.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// dialWhenReady connects to addr once something listens there, giving up
// if p exits or d passes.
func dialWhenReady(t *testing.T, p *proc, network, addr string, d time.Duration) net.Conn {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.Dial(network, addr)
		if err == nil {
			return c
		}
		if p.exited() {
			t.Fatalf("rssh exited %d before %s was ready: %s", p.code, addr, p.err.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v; rssh said %q", addr, d, p.err.String())
	return nil
}

const bulk = 16 << 20

// exchange sends n random bytes on c, half-closes, reads everything the
// peer sends, and returns the digests of what went each way.
func exchange(c net.Conn, n int) (sent, received [32]byte, got int64, err error) {
	data := make([]byte, n)
	rand.Read(data)
	sent = sha256.Sum256(data)
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, werr = c.Write(data)
		if hc, ok := c.(interface{ CloseWrite() error }); ok {
			hc.CloseWrite()
		}
	}()
	h := sha256.New()
	got, err = io.Copy(h, c)
	wg.Wait()
	copy(received[:], h.Sum(nil))
	if err == nil {
		err = werr
	}
	return sent, received, got, err
}

// bulkServer accepts connections and does its half of exchange on each,
// reporting the digests it saw.
type bulkServer struct {
	l       net.Listener
	results chan [2][32]byte // sent, received
}

func startBulkServer(t *testing.T) *bulkServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &bulkServer{l: l, results: make(chan [2][32]byte, 4)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sent, received, _, err := exchange(c, bulk)
				if err == nil {
					s.results <- [2][32]byte{sent, received}
				}
			}()
		}
	}()
	return s
}

func (s *bulkServer) port() int { return s.l.Addr().(*net.TCPAddr).Port }

// checkBulk runs exchange over c against s and compares both directions.
func checkBulk(t *testing.T, s *bulkServer, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	sent, received, got, err := exchange(c, bulk)
	if err != nil {
		t.Fatalf("exchange: %v (received %d bytes)", err, got)
	}
	select {
	case r := <-s.results:
		if r[1] != sent {
			t.Error("the server received other bytes than the client sent")
		}
		if r[0] != received {
			t.Errorf("the client received other bytes than the server sent (%d bytes)", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server never finished its exchange")
	}
}

func freeLocalPort(t *testing.T) int { return deadPort(t) }

// -L carries 16 MiB each way, intact, and a second -L to a refused port
// costs one line per connection, not the session.
func TestLocalForward(t *testing.T) {
	w := newWorld(t, "", "")
	s := startBulkServer(t)
	lp, refusedLP, dead := freeLocalPort(t), freeLocalPort(t), deadPort(t)
	p := w.start("-N",
		"-L", strconv.Itoa(lp)+":127.0.0.1:"+strconv.Itoa(s.port()),
		"-L", strconv.Itoa(refusedLP)+":127.0.0.1:"+strconv.Itoa(dead),
		"target")
	c := dialWhenReady(t, p, "tcp", "127.0.0.1:"+strconv.Itoa(lp), 15*time.Second)
	defer c.Close()
	checkBulk(t, s, c)

	for i := 0; i < 2; i++ {
		rc := dialWhenReady(t, p, "tcp", "127.0.0.1:"+strconv.Itoa(refusedLP), 5*time.Second)
		rc.SetDeadline(time.Now().Add(10 * time.Second))
		if n, err := rc.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Fatalf("a refused forward should close the local connection, read %d, %v", n, err)
		}
		rc.Close()
	}
	if !pollUntil(5*time.Second, func() bool { return strings.Count(p.err.String(), "\n") >= 2 }) {
		t.Fatalf("want one line per refused connection, got %q", p.err.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(p.err.String()), "\n") {
		if !strings.HasPrefix(l, "rssh: ") || !strings.Contains(l, "127.0.0.1:"+strconv.Itoa(dead)) || !strings.Contains(l, "Connection refused") {
			t.Errorf("unclear line for a refused forward: %q", l)
		}
	}
	if p.exited() {
		t.Fatalf("a refused forwarded connection ended rssh: exit %d", p.code)
	}
}

// A listen port already taken: a warning by default, exit 255 with one line
// under ExitOnForwardFailure, as ssh.
func TestLocalForwardBindFailure(t *testing.T) {
	w := newWorld(t, "", "")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	r := w.rssh(nil, "-L", "127.0.0.1:"+port+":127.0.0.1:22", "target", "echo still-ran")
	if r.code != 0 || r.stdout != "still-ran\n" || !strings.HasPrefix(r.stderr, "rssh: warning: ") || !strings.Contains(r.stderr, port) {
		t.Fatalf("want a warning and the command run, got %s", r)
	}
	r = w.rssh(nil, "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:"+port+":127.0.0.1:22", "target", "echo still-ran")
	if r.code != 255 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "rssh: ") || !strings.Contains(r.stderr, port) {
		t.Fatalf("want one error line and exit 255, got %s", r)
	}
}

var allocatedRE = regexp.MustCompile(`Allocated port (\d+) for remote forward to 127\.0\.0\.1:(\d+)`)

// -R with port 0 reports the port the server picked, as ssh, and carries
// 16 MiB each way, intact.
func TestRemoteForward(t *testing.T) {
	w := newWorld(t, "", "")
	s := startBulkServer(t)
	p := w.start("-N", "-R", "0:127.0.0.1:"+strconv.Itoa(s.port()), "target")
	var port string
	if !pollUntil(15*time.Second, func() bool {
		m := allocatedRE.FindStringSubmatch(p.err.String())
		if m != nil {
			port = m[1]
		}
		return m != nil || p.exited()
	}) || port == "" {
		t.Fatalf("no allocated port reported: exit %v %q", p.exited(), p.err.String())
	}
	c := dialWhenReady(t, p, "tcp", "127.0.0.1:"+port, 5*time.Second)
	defer c.Close()
	checkBulk(t, s, c)
}

// -D serves SOCKS5 CONNECT (by name and by address) and SOCKS4a.
func TestDynamicForward(t *testing.T) {
	w := newWorld(t, "", "")
	echo := testenv.StartEcho(t)
	dp := freeLocalPort(t)
	p := w.start("-N", "-D", strconv.Itoa(dp), "target")
	addr := "127.0.0.1:" + strconv.Itoa(dp)
	dialWhenReady(t, p, "tcp", addr, 15*time.Second).Close()

	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, uint16(echo.Addr().(*net.TCPAddr).Port))
	for _, c := range []struct {
		name     string
		greeting []byte
		request  []byte
		reply    int // bytes of reply after the greeting's answer
		ok       func([]byte) bool
	}{
		{"socks5 name", []byte{5, 1, 0}, append(append([]byte{5, 1, 0, 3, 9}, "localhost"...), port...), 10,
			func(b []byte) bool { return b[0] == 5 && b[1] == 0 }},
		{"socks5 ipv4", []byte{5, 1, 0}, append([]byte{5, 1, 0, 1, 127, 0, 0, 1}, port...), 10,
			func(b []byte) bool { return b[0] == 5 && b[1] == 0 }},
		{"socks4a", nil, append(append(append([]byte{4, 1}, port...), 0, 0, 0, 1, 'u', 0), "localhost\x00"...), 8,
			func(b []byte) bool { return b[0] == 0 && b[1] == 90 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(15 * time.Second))
			if c.greeting != nil {
				conn.Write(c.greeting)
				ans := make([]byte, 2)
				if _, err := io.ReadFull(conn, ans); err != nil || ans[0] != 5 || ans[1] != 0 {
					t.Fatalf("greeting answer %v, %v", ans, err)
				}
			}
			conn.Write(c.request)
			rep := make([]byte, c.reply)
			if _, err := io.ReadFull(conn, rep); err != nil || !c.ok(rep) {
				t.Fatalf("reply %v, %v; rssh said %q", rep, err, p.err.String())
			}
			conn.Write([]byte("through socks\n"))
			line := make([]byte, len("through socks\n"))
			if _, err := io.ReadFull(conn, line); err != nil || string(line) != "through socks\n" {
				t.Fatalf("echo through SOCKS: %q, %v", line, err)
			}
		})
	}
}

// -W relays stdin and stdout to a target through the server.
func TestStdioForwardRelays(t *testing.T) {
	w := newWorld(t, "", "")
	echo := testenv.StartEcho(t)
	r := w.rssh(strings.NewReader("relayed line\n"), "-W", echo.Addr().String(), "target")
	if r.code != 0 || r.stdout != "relayed line\n" {
		t.Fatalf("want the line echoed back, got %s", r)
	}
}

// -A lets the remote use the local agent: ssh-add -l there lists the key.
// -a (and no agent) do not, and a ForwardAgent socket that does not exist
// makes the remote's request fail cleanly instead of hanging.
func TestAgentForwarding(t *testing.T) {
	w := newWorld(t, "", "")
	testenv.Need(t, "ssh-add", "openssh-client")
	agent := testenv.StartAgent(t)
	agent.Add(t, w.key)
	w.env = append(w.env, "SSH_AUTH_SOCK="+agent.Sock)
	fp, err := exec.Command("ssh-keygen", "-lf", w.key.Path+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Fields(string(fp))[1]

	r := w.rssh(nil, "-A", "target", "ssh-add -l")
	if r.code != 0 || !strings.Contains(r.stdout, sha) {
		t.Fatalf("ssh-add -l on the remote should list %s, got %s", sha, r)
	}
	r = w.rssh(nil, "-a", "target", "ssh-add -l")
	if r.code != 2 || strings.Contains(r.stdout, sha) {
		t.Fatalf("with -a the remote should have no agent, got %s", r)
	}
	done := make(chan result, 1)
	go func() {
		done <- w.rssh(nil, "-o", "ForwardAgent="+w.dir+"/no-such-agent.sock", "target", "ssh-add -l")
	}()
	select {
	case r = <-done:
		if r.code == 0 || r.code == 255 {
			t.Fatalf("want ssh-add's own failure on the remote, got %s", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a forwarded agent that cannot be reached left the remote hanging")
	}
}

// A server that refuses agent forwarding is a warning; the command runs.
func TestAgentForwardingRefused(t *testing.T) {
	w := newWorld(t, "", "")
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Extra: "AllowAgentForwarding no"})
	w.sshd.Authorize(t, w.user, w.key)
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	w.writeConfig("")
	agent := testenv.StartAgent(t)
	w.env = append(w.env, "SSH_AUTH_SOCK="+agent.Sock)
	r := w.rssh(nil, "-A", "target", "echo ran")
	if r.code != 0 || r.stdout != "ran\n" || !strings.HasPrefix(r.stderr, "rssh: warning: ") {
		t.Fatalf("want a warning and the command run, got %s", r)
	}
}
