package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// A master started with -M, ControlPersist and -f for a remote forward
// the server refuses (its port is taken there), under ExitOnForwardFailure:
// ssh's master fails on the forward and exits, so -f ends with 255 and no
// master is left on the socket. rssh, whose -f side asks the master it
// has just started for the forward, must leave the same: 255, the failure
// said, and -O check finding nothing (OpenSSH's forward-control test runs
// into a lingering master otherwise, and waits ten connection attempts on
// it). With the forward free both keep a master that -O exit ends; one
// more such start meanwhile finds the socket taken and connects unshared.
func TestSharingControlPersistForwardFailure(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	echo := testenv.StartEcho(t)
	target := fmt.Sprintf("127.0.0.1:%d", echo.Addr().(*net.TCPAddr).Port)
	dir := sockDir(t)
	for _, bin := range []string{w.sshBin(), rsshBin} {
		name := filepath.Base(bin)
		sock := filepath.Join(dir, name)
		start := func(rport string) result {
			return w.run(nil, bin, "-F", w.config, "-R", "127.0.0.1:"+rport+":"+target,
				"-o", "ExitOnForwardFailure=yes", "-M", "-S", sock, "-o", "ControlPersist=yes", "-f", "target", "true")
		}
		_, rport, _ := net.SplitHostPort(taken.Addr().String())
		r := start(rport)
		if r.code != 255 || !strings.Contains(r.stderr, "remote port forwarding failed for listen port "+rport) {
			t.Errorf("%s: a refused -R under ExitOnForwardFailure: %s", name, r)
		}
		if c := w.run(nil, bin, "-F", w.config, "-S", sock, "-O", "check", "target"); c.code != 255 {
			t.Errorf("%s: a master is left after the failed start: %s", name, c)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("%s: socket left after the failed start: %v", name, err)
		}
		if t.Failed() {
			return // a master left behind would hold up what follows
		}

		free := freePort(t)
		if r := start(fmt.Sprint(free)); r.code != 0 {
			t.Fatalf("%s: -R to a free port: %s", name, r)
		}
		echoVia(t, free)
		// The same again while that master lives: as ssh, it says the
		// socket is taken and goes on without sharing.
		again := freePort(t)
		if r := start(fmt.Sprint(again)); r.code != 0 || !strings.Contains(r.stderr, "ControlSocket "+sock+" already exists, disabling multiplexing") {
			t.Errorf("%s: a second -M -f with a live master: %s", name, r)
		}
		if r := w.run(nil, bin, "-F", w.config, "-S", sock, "-O", "exit", "target"); r.code != 0 {
			t.Fatalf("%s -O exit: %s", name, r)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Lstat(sock); os.IsNotExist(err) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("%s: socket left after -O exit: %v", name, err)
		}
	}
}
