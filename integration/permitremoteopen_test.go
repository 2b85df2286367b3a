package integration

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// PermitRemoteOpen limits where a remote dynamic forward (-R with a port
// alone: the client serves SOCKS for what the server passes on) connects.
// For each setting, rssh and OpenSSH's ssh get the same four SOCKS
// requests (SOCKS5 by name and by address, SOCKS4, SOCKS4a by name) for an
// echo server and must give each the same answer: connected, or closed
// without a reply (ssh's rdynamic_connect_finish closes the channel it has
// already confirmed). Both on a direct connection (-N -R 0) and through a
// master whose client asks for the forward (-O forward -R 0): the master's
// setting governs its clients' forwards, as in ssh.
func TestPermitRemoteOpen(t *testing.T) {
	w := newWorldSSHD(t, testenv.SSHDOptions{LogLevel: "INFO"})
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	ep := strconv.Itoa(echoPort)
	// Which probes (by name, in socksProbes' order) connect.
	names := []string{"socks5 name", "socks5 ipv4", "socks4", "socks4a"}
	cases := []struct {
		permit  string
		connect string // the probes that get through, by index
	}{
		{"any", "0123"},
		{"none", ""},
		{"127.0.0.1:" + ep, "12"},
		{"localhost:*", "03"},
		{"*:" + ep, "0123"},
		{"127.0.0.1:1 localhost:1 [::1]:" + ep, ""},
		{"Localhost:" + ep + " 127.0.0.1:*", "12"}, // names match exactly, case and all
	}
	probe := func(bin, mode, permit, addr string) string {
		t.Helper()
		var out []string
		for i, pr := range socksProbes(echoPort) {
			reply, echoed, err := probeSOCKS(addr, pr)
			r := fmt.Sprintf("%s: reply %v echoed %v err %v", names[i], reply, echoed, err)
			out = append(out, r)
			for _, c := range cases {
				if c.permit == permit && echoed != strings.Contains(c.connect, strconv.Itoa(i)) {
					t.Errorf("%s %s PermitRemoteOpen %q: %s", bin, mode, permit, r)
				}
			}
		}
		return strings.Join(out, "\n")
	}
	direct := func(bin, permit string) string {
		t.Helper()
		p := w.startBin(bin, "-N", "-o", "PermitRemoteOpen "+permit, "-R", "0", "target")
		var m []string
		if !pollUntil(15*time.Second, func() bool {
			m = allocatedAnyRE.FindStringSubmatch(p.err.String())
			return m != nil || p.exited()
		}) || m == nil {
			t.Fatalf("%s: no allocated port reported: exited %v %q", bin, p.exited(), p.err.String())
		}
		out := probe(bin, "-R 0", permit, "127.0.0.1:"+m[1])
		p.cmd.Process.Kill()
		<-p.done
		return out
	}
	dir := sockDir(t)
	// viaMaster starts master with the setting and has client ask it for
	// the forward.
	viaMaster := func(master, client, permit string) string {
		t.Helper()
		bin := client
		sock := filepath.Join(dir, filepath.Base(master))
		_, mlog, exited := w.background(master, "-F", w.config, "-M", "-S", sock, "-N", "-o", "PermitRemoteOpen "+permit, "target")
		waitSock(t, sock, exited, mlog)
		fwd := w.run(nil, client, "-F", w.config, "-S", sock, "-O", "forward", "-R", "0", "target")
		port, err := strconv.Atoi(strings.TrimSpace(fwd.stdout))
		if fwd.code != 0 || err != nil {
			t.Fatalf("%s -O forward -R 0: %s", bin, fwd)
		}
		out := probe(bin, "-O forward -R 0", permit, "127.0.0.1:"+strconv.Itoa(port))
		if r := w.run(nil, bin, "-F", w.config, "-S", sock, "-O", "exit", "target"); r.code != 0 {
			t.Fatalf("%s -O exit: %s", bin, r)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s master still running after -O exit", bin)
		}
		return out
	}
	ssh := w.sshBin()
	for i, c := range cases {
		want := direct(ssh, c.permit)
		if got := direct(rsshBin, c.permit); got != want {
			t.Errorf("-R 0, PermitRemoteOpen %q:\nssh:\n%s\nrssh:\n%s", c.permit, want, got)
		}
		want = viaMaster(ssh, ssh, c.permit)
		pairs := [][2]string{{rsshBin, rsshBin}}
		if i == 1 || i == 2 {
			// Either client with either master: the forward request
			// carries parse_forward's "socks" target both ways.
			pairs = append(pairs, [2]string{rsshBin, ssh}, [2]string{ssh, rsshBin})
		}
		for _, p := range pairs {
			if got := viaMaster(p[0], p[1], c.permit); got != want {
				t.Errorf("master %s, client %s, PermitRemoteOpen %q:\nssh with ssh:\n%s\ngot:\n%s", p[0], p[1], c.permit, want, got)
			}
		}
	}

	// "NONE" reads as a config value (any case) but ssh applies the
	// keywords in lower case only: after logging in it fails on a host
	// with no port.
	want := w.ssh(nil, "-o", "PermitRemoteOpen NONE", "target", "true")
	got := w.rssh(nil, "-o", "PermitRemoteOpen NONE", "target", "true")
	const msg = "bad port number in permitremoteopen"
	if want.code != 255 || got.code != 255 || !strings.Contains(want.stderr, msg) || got.stderr != "rssh: "+msg+"\n" {
		t.Errorf("PermitRemoteOpen NONE: ssh\n%s\nrssh\n%s", want, got)
	}
}
