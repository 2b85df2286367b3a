package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// newWorldSSHD is newWorld with an sshd started with opts.
func newWorldSSHD(t *testing.T, opts testenv.SSHDOptions) *world {
	t.Helper()
	w := newWorld(t, "", "")
	w.sshd = testenv.StartSSHD(t, opts)
	w.sshd.Authorize(t, w.user, w.key)
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	w.writeConfig("")
	return w
}

// A connection that reaches a remote forward's port the moment the server
// has bound it is forwarded, not refused (x/crypto registers a forward only
// after the server's reply: golang/go#64094). A client connects in a tight
// loop until the port accepts and must then read the target's banner (the
// sshd's own, forwarded back to it), with and without
// ExitOnForwardFailure, against an sshd logging at INFO (DEBUG2 hides the
// race). As ssh, rssh loses none.
func TestRemoteForwardFirstConnection(t *testing.T) {
	w := newWorldSSHD(t, testenv.SSHDOptions{LogLevel: "INFO"})
	const rounds = 10
	lost := 0
	for round := 0; round < rounds; round++ {
		port := strconv.Itoa(freeLocalPort(t))
		args := []string{"-N", "-R", port + ":127.0.0.1:" + strconv.Itoa(w.sshd.Port), "target"}
		if round%2 == 1 {
			args = append([]string{"-o", "ExitOnForwardFailure=yes"}, args...)
		}
		p := w.start(args...)
		c := dialTight(t, p, "127.0.0.1:"+port, 15*time.Second)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		banner := make([]byte, 4)
		if _, err := io.ReadFull(c, banner); err != nil || string(banner) != "SSH-" {
			lost++
			t.Logf("round %d: first connection lost: read %q, %v", round, banner, err)
		}
		c.Close()
		p.cmd.Process.Kill()
		<-p.done
	}
	if lost > 0 {
		t.Fatalf("%d of %d first connections through -R lost", lost, rounds)
	}
}

// dialTight connects to addr as fast as it can until it accepts, giving up
// when p exits, after d, or after a bounded number of attempts.
func dialTight(t *testing.T, p *proc, addr string, d time.Duration) net.Conn {
	t.Helper()
	deadline := time.Now().Add(d)
	for attempt := 0; attempt < 5_000_000; attempt++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c
		}
		if attempt%256 == 0 && (p.exited() || time.Now().After(deadline)) {
			break
		}
	}
	t.Fatalf("%s never accepted; rssh exited %v (%d): %q", addr, p.exited(), p.code, p.err.String())
	return nil
}

var allocatedAnyRE = regexp.MustCompile(`Allocated port (\d+) for remote forward to (.*)`)

// socksProbe is one SOCKS request through a dynamic forward: greeting (nil
// for SOCKS4) and request bytes, and the length of the reply.
type socksProbe struct {
	name              string
	greeting, request []byte
	reply             int
}

func socksProbes(port int) []socksProbe {
	p := []byte{byte(port >> 8), byte(port)}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	return []socksProbe{
		{"socks5 name", []byte{5, 1, 0}, cat([]byte{5, 1, 0, 3, 9}, []byte("localhost"), p), 10},
		{"socks5 ipv4", []byte{5, 1, 0}, cat([]byte{5, 1, 0, 1, 127, 0, 0, 1}, p), 10},
		{"socks4", nil, cat([]byte{4, 1}, p, []byte{127, 0, 0, 1, 'u', 0}), 8},
		{"socks4a", nil, cat([]byte{4, 1}, p, []byte{0, 0, 0, 1, 'u', 0}, []byte("localhost\x00")), 8},
	}
}

// probeSOCKS runs pr against the SOCKS server at addr and says whether a
// line came back through it from the echo server; reply is the server's
// answer to the request.
func probeSOCKS(addr string, pr socksProbe) (reply []byte, echoed bool, err error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if pr.greeting != nil {
		c.Write(pr.greeting)
		ans := make([]byte, 2)
		if _, err := io.ReadFull(c, ans); err != nil || ans[0] != 5 || ans[1] != 0 {
			return ans, false, fmt.Errorf("greeting answered %v, %v", ans, err)
		}
	}
	c.Write(pr.request)
	reply = make([]byte, pr.reply)
	if _, err := io.ReadFull(c, reply); err != nil {
		return reply, false, fmt.Errorf("no reply: %v", err)
	}
	const line = "through remote socks\n"
	c.Write([]byte(line))
	got := make([]byte, len(line))
	_, err = io.ReadFull(c, got)
	return reply, err == nil && string(got) == line, nil
}

// -R with a port and no destination is a remote dynamic forward (OpenSSH ≥
// 7.6): the server listens, and the client answers SOCKS4, SOCKS4a and
// SOCKS5 for what arrives, connecting from its own side. rssh and ssh are
// run the same way and must print the same allocation line and give every
// SOCKS client the same answer; a refused target is refused by both.
func TestRemoteDynamicForward(t *testing.T) {
	w := newWorldSSHD(t, testenv.SSHDOptions{LogLevel: "INFO"})
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	type outcome struct {
		allocated string
		replies   map[string]string
	}
	run := func(bin string) outcome {
		t.Helper()
		p := w.startBin(bin, "-N", "-R", "0", "target")
		var m []string
		if !pollUntil(15*time.Second, func() bool {
			m = allocatedAnyRE.FindStringSubmatch(p.err.String())
			return m != nil || p.exited()
		}) || m == nil {
			t.Fatalf("%s: no allocated port reported: exited %v %q", bin, p.exited(), p.err.String())
		}
		addr := "127.0.0.1:" + m[1]
		out := outcome{allocated: strings.TrimSpace(m[2]), replies: map[string]string{}}
		for _, pr := range socksProbes(echoPort) {
			reply, echoed, err := probeSOCKS(addr, pr)
			out.replies[pr.name] = fmt.Sprintf("reply %v echoed %v err %v", reply, echoed, err)
			if !echoed {
				t.Errorf("%s %s: nothing came through: %s; client said %q", bin, pr.name, out.replies[pr.name], p.err.String())
			}
		}
		// A target that refuses: ssh closes the SOCKS connection without
		// a reply, rssh answers with the failure code first (deliberate:
		// RFC 1928 and SOCKS4 both have one, and -D answers so too).
		dead := socksProbes(deadPort(t))
		for _, pr := range []socksProbe{dead[1], dead[2]} {
			reply, echoed, err := probeSOCKS(addr, pr)
			refused := err != nil || (pr.greeting != nil && reply[1] == 5) || (pr.greeting == nil && reply[1] == 91)
			if echoed || !refused {
				t.Errorf("%s %s to a dead port: want it refused, got reply %v, err %v", bin, pr.name, reply, err)
			}
		}
		// Fixed port and a bind address, as in -R 127.0.0.1:PORT.
		port := strconv.Itoa(freeLocalPort(t))
		q := w.startBin(bin, "-N", "-R", "127.0.0.1:"+port, "target")
		c := dialWhenReady(t, q, "tcp", "127.0.0.1:"+port, 15*time.Second)
		c.Close()
		pr := socksProbes(echoPort)[0]
		reply, echoed, err := probeSOCKS("127.0.0.1:"+port, pr)
		out.replies["bound "+pr.name] = fmt.Sprintf("reply %v echoed %v err %v", reply, echoed, err)
		if !echoed {
			t.Errorf("%s -R 127.0.0.1:%s: nothing came through: %s", bin, port, out.replies["bound "+pr.name])
		}
		return out
	}
	want := run(w.sshBin())
	got := run(rsshBin)
	if got.allocated != want.allocated {
		t.Errorf("allocation line: ssh says %q, rssh %q", want.allocated, got.allocated)
	}
	for name, r := range want.replies {
		if got.replies[name] != r {
			t.Errorf("%s: ssh gave %s, rssh %s", name, r, got.replies[name])
		}
	}
}
