package integration

import (
	"io"
	"net"
	"strconv"
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
