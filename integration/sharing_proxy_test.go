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

// Proxy mode (ssh -O proxy, MUX_C_PROXY) end to end: OpenSSH's client on
// rssh's master, rssh's client on rssh's and OpenSSH's masters.

// proxyCases are the sessions run through proxy mode and directly, whose
// exit status and bytes must be equal: the statuses of OpenSSH's
// multiplex regress test, with and without the early close of stdout and
// stderr.
func proxyCases() [][]string {
	var cases [][]string
	for _, s := range []int{0, 1, 4, 5, 44} {
		cases = append(cases, []string{"target", shareCmd + "; exit " + strconv.Itoa(s)})
	}
	cases[0] = []string{"target", shareCmd}
	cases = append(cases, []string{"-n", "target", `exec sh -c 'sleep 2; exec >/dev/null 2>&1; sleep 3; exit 5'`})
	return cases
}

// TestSharingProxyOpenSSHClientRsshMaster: `ssh -O proxy` through an rssh
// master: sessions equal to direct ones, and -R through proxy mode (the
// server's channels for it routed back to the proxy client).
func TestSharingProxyOpenSSHClientRsshMaster(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	sock := filepath.Join(sockDir(t), "rssh")
	_, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)
	for _, c := range proxyCases() {
		want := w.ssh(strings.NewReader("hi"), append([]string{"-S", "none"}, c...)...)
		got := w.ssh(strings.NewReader("hi"), append([]string{"-S", sock, "-O", "proxy"}, c...)...)
		if got != want {
			t.Fatalf("%q: ssh -O proxy through the rssh master:\n%s\ndirect:\n%s", c, got, want)
		}
	}
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	rport := freePort(t)
	_, plog, pexited := w.background(w.sshBin(), "-F", w.config, "-S", sock, "-O", "proxy", "-N",
		"-v", "-o", "ExitOnForwardFailure yes", "-R", fmt.Sprintf("%d:127.0.0.1:%d", rport, echoPort), "target")
	deadline := time.Now().Add(20 * time.Second)
	for !dialsPort(rport) {
		select {
		case <-pexited:
			t.Fatalf("ssh -O proxy -R exited: %s\nmaster: %s", plog.String(), mlog.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("-R through proxy mode never listened: %s", plog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	echoVia(t, rport)
	echoVia(t, rport)
	if n := strings.Count(w.sshd.Log(), "Accepted publickey"); n != 1+len(proxyCases()) {
		t.Fatalf("%d logins: the master's and the direct sessions' expected", n)
	}
}

func dialsPort(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestSharingProxyRsshClient: `rssh -O proxy` through an rssh master and
// through an OpenSSH master: the exit status and bytes of the direct
// case, one login (the master's) for all of them.
func TestSharingProxyRsshClient(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	dir := sockDir(t)
	for _, m := range []struct{ name, bin string }{{"rssh", rsshBin}, {"ssh", w.sshBin()}} {
		sock := filepath.Join(dir, m.name)
		_, mlog, exited := w.background(m.bin, "-F", w.config, "-M", "-S", sock, "-N", "target")
		waitSock(t, sock, exited, mlog)
		for _, c := range proxyCases() {
			want := w.rssh(strings.NewReader("hi"), append([]string{"-S", "none"}, c...)...)
			got := w.rssh(strings.NewReader("hi"), append([]string{"-S", sock, "-O", "proxy"}, c...)...)
			if got != want {
				t.Fatalf("%s master, %q: rssh -O proxy:\n%s\ndirect:\n%s\nmaster: %s", m.name, c, got, want, mlog.String())
			}
		}
	}
	if n := strings.Count(w.sshd.Log(), "Accepted publickey"); n != 2+len(proxyCases())*2 {
		t.Fatalf("%d logins: the masters' and the direct sessions' expected", n)
	}
	none := w.rssh(nil, "-S", filepath.Join(dir, "none"), "-O", "proxy", "target", "true")
	if none.code != 255 || !strings.Contains(none.stderr, "No such file or directory") {
		t.Fatalf("-O proxy with no master: %s", none)
	}
}
