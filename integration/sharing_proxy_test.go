package integration

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

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
	waitListen(t, rport, pexited, plog)
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
	// As ssh: -W after -O is refused.
	sshW := w.ssh(nil, "-S", filepath.Join(dir, "rssh"), "-O", "proxy", "-W", "127.0.0.1:1", "target")
	rsshW := w.rssh(nil, "-S", filepath.Join(dir, "rssh"), "-O", "proxy", "-W", "127.0.0.1:1", "target")
	if sshW.code != 255 || rsshW.code != 255 || !strings.Contains(rsshW.stderr, "cannot specify stdio forward with -O") {
		t.Fatalf("-O proxy -W: rssh %s\nssh %s", rsshW, sshW)
	}
}

// TestSharingProxyRsshForwardsAndFaults: `rssh -O proxy -L` through an
// OpenSSH master (direct-tcpip channels of its own), a PTY session
// through an rssh master, and the master killed under a proxy-mode
// session: rssh then exits 255 at once, as ssh.
func TestSharingProxyRsshForwardsAndFaults(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	dir := sockDir(t)
	osock := filepath.Join(dir, "ssh")
	_, olog, oexited := w.background(w.sshBin(), "-F", w.config, "-M", "-S", osock, "-N", "target")
	waitSock(t, osock, oexited, olog)
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	lport := freePort(t)
	_, llog, lexited := w.background(rsshBin, "-F", w.config, "-S", osock, "-O", "proxy", "-N",
		"-L", fmt.Sprintf("%d:127.0.0.1:%d", lport, echoPort), "target")
	waitListen(t, lport, lexited, llog)
	echoVia(t, lport)
	echoVia(t, lport)
	// -R through the OpenSSH master, which keeps the server's reply: the
	// forward works all the same.
	rport := freePort(t)
	_, rlog, rexited := w.background(rsshBin, "-F", w.config, "-S", osock, "-O", "proxy", "-N",
		"-R", fmt.Sprintf("%d:127.0.0.1:%d", rport, echoPort), "target")
	waitListen(t, rport, rexited, rlog)
	echoVia(t, rport)

	sock := filepath.Join(dir, "rssh")
	master, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)
	// -R with a port the server picks, through the rssh master, which
	// answers with it: rssh says it as ssh does.
	_, r0log, r0exited := w.background(rsshBin, "-F", w.config, "-S", sock, "-O", "proxy", "-N",
		"-o", "LogLevel INFO", "-R", fmt.Sprintf("0:127.0.0.1:%d", echoPort), "target")
	if !r0log.WaitFor("Allocated port ", 20*time.Second) {
		t.Fatalf("-R 0 through proxy mode: %s", r0log.String())
	}
	var port0 int
	fmt.Sscanf(r0log.String()[strings.Index(r0log.String(), "Allocated port ")+len("Allocated port "):], "%d", &port0)
	waitListen(t, port0, r0exited, r0log)
	echoVia(t, port0)
	cmd := exec.Command(rsshBin, "-F", w.config, "-tt", "-S", sock, "-O", "proxy", "target", `test -t 0 && echo is-a-tty; stty size; exit 5`)
	cmd.Env = w.env
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 27, Cols: 83})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() { b, _ := io.ReadAll(ptmx); out <- string(b) }()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("rssh -tt -O proxy did not end")
	}
	ptmx.Close()
	if got := <-out; cmd.ProcessState.ExitCode() != 5 || !strings.Contains(got, "is-a-tty\r\n") || !strings.Contains(got, "27 83\r\n") {
		t.Fatalf("PTY through proxy mode: exit %d, %q", cmd.ProcessState.ExitCode(), got)
	}

	sess := exec.Command(rsshBin, "-F", w.config, "-S", sock, "-O", "proxy", "target", "echo started; sleep 60")
	sess.Env = w.env
	sout := new(testenv.Buffer)
	sess.Stdout = sout
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	sdone := make(chan struct{})
	go func() { sess.Wait(); close(sdone) }()
	if !sout.WaitFor("started", 20*time.Second) {
		sess.Process.Kill()
		t.Fatalf("proxy-mode session did not start: %s", mlog.String())
	}
	master.Process.Signal(syscall.SIGKILL)
	<-exited
	select {
	case <-sdone:
	case <-time.After(10 * time.Second):
		sess.Process.Kill()
		t.Fatal("rssh -O proxy hung after its master was killed")
	}
	if code := sess.ProcessState.ExitCode(); code != 255 {
		t.Fatalf("rssh -O proxy exited %d after its master was killed, want 255", code)
	}
}

// TestSharingProxyRsshAgent: OpenSSH's ssh -A -O proxy gets no agent
// through an rssh master (it would crash on an agent channel in proxy
// mode), as a direct ssh -a; `rssh -A -O proxy` gets this client's agent
// for its session (the master gives it the server's agent channels), with
// the answers of a direct rssh -A. The OpenSSH case comes first: sshd
// makes one agent socket per connection, and from the first session that
// asks on, every session on the connection sees it.
func TestSharingProxyRsshAgent(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	agent := testenv.StartAgent(t)
	agent.Add(t, w.key)
	w.env = append(w.env, "SSH_AUTH_SOCK="+agent.Sock)
	sock := filepath.Join(sockDir(t), "rssh")
	_, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)
	noAgent := w.ssh(nil, "-a", "-S", "none", "target", "ssh-add -l")
	ossh := w.ssh(nil, "-A", "-S", sock, "-O", "proxy", "target", "ssh-add -l")
	if ossh != noAgent || noAgent.code != 2 {
		t.Fatalf("ssh -A -O proxy:\n%s\ndirect -a:\n%s", ossh, noAgent)
	}
	want := w.rssh(nil, "-A", "-S", "none", "target", "ssh-add -l")
	got := w.rssh(nil, "-A", "-S", sock, "-O", "proxy", "target", "ssh-add -l")
	if got != want || want.code != 0 || !strings.Contains(want.stdout, "ED25519") {
		t.Fatalf("rssh -A -O proxy:\n%s\ndirect:\n%s\nmaster: %s", got, want, mlog.String())
	}
}

// TestSharingProxyToken: in proxy mode each session gets its
// environment's token: OpenSSH's ssh -O proxy through an rssh master (the
// master adds it), rssh -O proxy through an rssh master and through an
// OpenSSH master (the client's own env requests, which an OpenSSH master
// relays as they are in proxy mode); a session of another environment
// does not use a master that delivers another token.
func TestSharingProxyToken(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, false)
	tok := w.op.Tokens
	dir := sockDir(t)
	sock := filepath.Join(dir, "prod")
	_, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "prod")
	waitSock(t, sock, exited, mlog)
	wantEnv := tok["production"] + "|production||\n"
	if r := w.ssh(nil, "-S", sock, "-O", "proxy", "prod", showEnv); r.code != 0 || r.stdout != wantEnv {
		t.Fatalf("ssh -O proxy through the rssh master: %s", r)
	}
	if r := w.rssh(nil, "-S", sock, "-O", "proxy", "prod", showEnv); r.code != 0 || r.stdout != wantEnv {
		t.Fatalf("rssh -O proxy through the rssh master: %s", r)
	}
	if r := w.rssh(nil, "-S", sock, "-O", "proxy", "dev", showEnv); r.code != 255 || r.stdout != "" ||
		!strings.Contains(r.stderr, `delivers the token of environment "production", this session wants "development"`) {
		t.Fatalf("dev -O proxy with prod's master: %s", r)
	}
	osock := filepath.Join(dir, "ossh")
	_, olog, oexited := w.background("ssh", "-F", w.config, "-M", "-S", osock, "-N", "prod")
	waitSock(t, osock, oexited, olog)
	if r := w.rssh(nil, "-S", osock, "-O", "proxy", "prod", showEnv); r.code != 0 || r.stdout != wantEnv {
		t.Fatalf("rssh -O proxy through the OpenSSH master: %s", r)
	}
	if n := strings.Count(w.sshd.Log(), "Accepted publickey"); n != 2 {
		t.Fatalf("%d logins, want the two masters' only", n)
	}
}

// waitListen waits until 127.0.0.1:port takes connections, or fails if
// the process meant to listen there exits first.
func waitListen(t *testing.T, port int, exited chan struct{}, log *testenv.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !dialsPort(port) {
		select {
		case <-exited:
			t.Fatalf("exited before port %d listened: %s", port, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d never listened: %s", port, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
