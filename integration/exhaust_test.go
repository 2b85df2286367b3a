package integration

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// through sends a line through the forward at addr to the echo server on
// echoPort (as a SOCKS5 client for -D) and wants it back.
func through(kind, addr string, echoPort int) error {
	if kind == "D" {
		reply, echoed, err := probeSOCKS(addr, socksProbes(echoPort)[1])
		if err != nil || !echoed {
			return fmt.Errorf("SOCKS reply %v, echoed %v, %v", reply, echoed, err)
		}
		return nil
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	const line = "after the shortage\n"
	if _, err := io.WriteString(c, line); err != nil {
		return err
	}
	got := make([]byte, len(line))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read %q: %v", got, err)
	}
	return nil
}

// strerror(3)'s words, as ssh says them.
const shortageWords = "Too many open files"

// -L, -D and -R keep serving after rssh runs out of file descriptors
// (issue 13): rssh runs with RLIMIT_NOFILE lowered to 40 by prlimit, 60
// connections held open through the forward exhaust it, a connection made
// meanwhile waits rather than being lost, and once the held ones close it
// and a new one are served. The shortage is said once, not per failure.
func TestForwardsSurviveFDExhaustion(t *testing.T) {
	prlimit := testenv.Need(t, "prlimit", "util-linux")
	w := newWorld(t, "", "")
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	const nofile, hold = 40, 60
	for _, kind := range []string{"L", "D", "R"} {
		t.Run(kind, func(t *testing.T) {
			port := strconv.Itoa(freeLocalPort(t))
			addr := "127.0.0.1:" + port
			spec := port + ":127.0.0.1:" + strconv.Itoa(echoPort)
			if kind == "D" {
				spec = port
			}
			p := w.startArgv(prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--",
				rsshBin, "-F", w.config, "-N", "-"+kind, spec, "target")
			dialWhenReady(t, p, "tcp", addr, 15*time.Second).Close()
			if err := through(kind, addr, echoPort); err != nil {
				t.Fatalf("before the shortage: %v; rssh said %q", err, p.err.String())
			}

			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for i := 0; i < hold; i++ {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatalf("holding connection %d: %v", i, err)
				}
				held = append(held, c)
			}
			if !pollUntil(20*time.Second, func() bool { return strings.Contains(p.err.String(), shortageWords) || p.exited() }) {
				t.Fatalf("%d held connections did not exhaust %d descriptors; rssh said %q", hold, nofile, p.err.String())
			}
			if p.exited() {
				t.Fatalf("rssh exited %d on the shortage: %q", p.code, p.err.String())
			}
			late := make(chan error, 1)
			go func() { late <- through(kind, addr, echoPort) }()
			for _, c := range held {
				c.Close()
			}
			held = nil
			select {
			case err := <-late:
				if err != nil {
					t.Fatalf("a connection made during the shortage was lost: %v; rssh said %q", err, p.err.String())
				}
			case <-time.After(40 * time.Second):
				t.Fatalf("a connection made during the shortage never came through; rssh said %q", p.err.String())
			}
			if err := through(kind, addr, echoPort); err != nil {
				t.Fatalf("after the shortage: %v; rssh said %q", err, p.err.String())
			}
			if n := strings.Count(p.err.String(), shortageWords); n != 1 {
				t.Errorf("the shortage was said %d times, want once: %q", n, p.err.String())
			}
			if p.exited() {
				t.Fatalf("rssh exited %d", p.code)
			}
			p.cmd.Process.Kill()
			<-p.done
		})
	}
}
