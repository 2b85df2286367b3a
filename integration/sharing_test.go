package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
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

// Connection sharing, end to end: rssh as a client of OpenSSH's master,
// OpenSSH's clients on rssh's master, the token rule, stale sockets and
// ControlPersist.

const shareCmd = `printf 'out:%s\n' "$(cat)"; printf 'err line\n' >&2; exit 3`

// sockDir is a short directory for control sockets (sun_path is 108 bytes).
func sockDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "share-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// background starts program with the world's environment, its stderr
// collected, and kills it when the test ends.
func (w *world) background(program string, args ...string) (*exec.Cmd, *testenv.Buffer, chan struct{}) {
	w.t.Helper()
	cmd := exec.Command(program, args...)
	cmd.Env = w.env
	logb := new(testenv.Buffer)
	cmd.Stdout, cmd.Stderr = logb, logb
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	w.t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return cmd, logb, exited
}

func waitSock(t *testing.T, sock string, exited chan struct{}, log *testenv.Buffer) {
	t.Helper()
	if err := testenv.WaitSocket(sock, exited, 20*time.Second); err != nil {
		t.Fatalf("master: %v\n%s", err, log.String())
	}
}

func gone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Acceptance 1, OpenSSH master: rssh through it runs exec sessions with
// the exit status and bytes of the unshared case, -O check and -O exit.
func TestSharingRsshClientOpenSSHMaster(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	sock := filepath.Join(sockDir(t), "ossh")
	master, mlog, exited := w.background(w.sshBin(), "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)

	want := w.rssh(strings.NewReader("hi"), "-S", "none", "target", shareCmd)
	got := w.rssh(strings.NewReader("hi"), "-S", sock, "target", shareCmd)
	if got != want || want.code != 3 || want.stdout != "out:hi\n" {
		t.Fatalf("through the OpenSSH master:\n%s\ndirect:\n%s", got, want)
	}
	// The session really went through the master: sshd saw one login.
	if n := strings.Count(w.sshd.Log(), "Accepted publickey"); n != 2 {
		t.Fatalf("%d logins for one direct and one shared session", n)
	}
	check := w.rssh(nil, "-S", sock, "-O", "check", "target")
	if check.code != 0 || check.stderr != fmt.Sprintf("Master running (pid=%d)\r\n", master.Process.Pid) {
		t.Fatalf("-O check: %s", check)
	}
	if r := w.ssh(nil, "-S", sock, "-O", "check", "target"); r.stderr != check.stderr {
		t.Fatalf("ssh -O check says %q", r.stderr)
	}
	bye := w.rssh(nil, "-S", sock, "-O", "exit", "target")
	if bye.code != 0 || bye.stderr != "Exit request sent.\r\n" {
		t.Fatalf("-O exit: %s", bye)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("OpenSSH master still running after rssh -O exit")
	}
	none := w.rssh(nil, "-S", sock, "-O", "check", "target")
	sshNone := w.ssh(nil, "-S", sock, "-O", "check", "target")
	if none.code != 255 || sshNone.code != 255 || !strings.Contains(none.stderr, "No such file or directory") {
		t.Fatalf("-O check with no master: rssh %s\nssh %s", none, sshNone)
	}
}

// Acceptance 1, OpenSSH master: a PTY session, -W and -L through it.
func TestSharingRsshPTYStdioForwardOpenSSHMaster(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	sock := filepath.Join(sockDir(t), "ossh")
	_, mlog, exited := w.background(w.sshBin(), "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)

	cmd := exec.Command(rsshBin, "-F", w.config, "-tt", "-S", sock, "target", `test -t 0 && echo is-a-tty; stty size; exit 6`)
	cmd.Env = w.env
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 90})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := make(chan string, 1)
	go func() { b, _ := io.ReadAll(ptmx); out <- string(b) }()
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("rssh -tt through the master did not end")
	}
	if s := <-out; cmd.ProcessState.ExitCode() != 6 || !strings.Contains(s, "is-a-tty\r\n") || !strings.Contains(s, "30 90\r\n") {
		t.Fatalf("exit %d, output %q", cmd.ProcessState.ExitCode(), s)
	}

	// -W: the sshd's own banner comes back through the master.
	wcmd := exec.Command(rsshBin, "-F", w.config, "-S", sock, "-W", "127.0.0.1:"+strconv.Itoa(w.sshd.Port), "target")
	wcmd.Env = w.env
	stdin, _ := wcmd.StdinPipe()
	stdout, _ := wcmd.StdoutPipe()
	if err := wcmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	stdin.Close()
	wcmd.Wait()
	if !strings.HasPrefix(line, "SSH-2.0-OpenSSH") {
		t.Fatalf("-W through the master: %q", line)
	}

	// -L with a session: the forward is the master's and stays after it.
	echo := testenv.StartEcho(t)
	lport := freePort(t)
	spec := fmt.Sprintf("%d:127.0.0.1:%d", lport, echo.Addr().(*net.TCPAddr).Port)
	if r := w.rssh(nil, "-S", sock, "-L", spec, "target", "true"); r.code != 0 {
		t.Fatalf("-L through the master: %s", r)
	}
	echoVia(t, lport)
	if strings.Count(w.sshd.Log(), "Accepted publickey") != 1 {
		t.Fatal("a session did not go through the master")
	}
}

// Acceptance 1, rssh master: OpenSSH's ssh -S, -O check, scp, rsync and
// -O exit against `rssh -M -S SOCK -N`.
func TestSharingOpenSSHClientsRsshMaster(t *testing.T) {
	testenv.Need(t, "scp", "openssh-client")
	testenv.Need(t, "rsync", "rsync")
	w := newWorld(t, "", "\tLogLevel ERROR")
	dir := sockDir(t)
	sock := filepath.Join(dir, "rssh")
	master, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)

	want := w.ssh(strings.NewReader("hi"), "-S", "none", "target", shareCmd)
	got := w.ssh(strings.NewReader("hi"), "-S", sock, "target", shareCmd)
	if got != want || want.code != 3 {
		t.Fatalf("ssh through the rssh master:\n%s\ndirect:\n%s", got, want)
	}
	check := w.ssh(nil, "-S", sock, "-O", "check", "target")
	if check.code != 0 || check.stderr != fmt.Sprintf("Master running (pid=%d)\r\n", master.Process.Pid) {
		t.Fatalf("ssh -O check: %s", check)
	}
	src := filepath.Join(dir, "src")
	os.WriteFile(src, bytes.Repeat([]byte("rssh master\n"), 10000), 0o644)
	remote := w.remoteDir()
	for _, args := range [][]string{
		{"scp", "-F", w.config, "-o", "ControlPath=" + sock, src, "target:" + remote + "/a"},
		{"rsync", "-e", "ssh -F " + w.config + " -S " + sock, "target:" + remote + "/a", dir + "/b"},
	} {
		if r := w.run(nil, args[0], args[1:]...); r.code != 0 {
			t.Fatalf("%v: %s", args, r)
		}
	}
	if b, _ := os.ReadFile(dir + "/b"); len(b) != 120000 {
		t.Fatalf("copied %d bytes", len(b))
	}
	if n := strings.Count(w.sshd.Log(), "Accepted publickey"); n != 2 {
		t.Fatalf("%d logins: the master's and the direct ssh's expected", n)
	}
	// Forwards the master owns, asked for by OpenSSH's -O forward: -L,
	// and -R with a port the server picks (printed on stdout).
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	lport := freePort(t)
	if r := w.ssh(nil, "-S", sock, "-O", "forward", "-L", fmt.Sprintf("%d:127.0.0.1:%d", lport, echoPort), "target"); r.code != 0 {
		t.Fatalf("-O forward -L: %s", r)
	}
	echoVia(t, lport)
	rr := w.ssh(nil, "-S", sock, "-O", "forward", "-R", fmt.Sprintf("0:127.0.0.1:%d", echoPort), "target")
	rport, err := strconv.Atoi(strings.TrimSpace(rr.stdout))
	if rr.code != 0 || err != nil || rport == 0 {
		t.Fatalf("-O forward -R 0: %s", rr)
	}
	echoVia(t, rport)
	bye := w.ssh(nil, "-S", sock, "-O", "exit", "target")
	if bye.code != 0 || bye.stderr != "Exit request sent.\r\n" {
		t.Fatalf("ssh -O exit: %s", bye)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("rssh master still running after ssh -O exit")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after exit: %v", err)
	}
}

// Acceptance 2: an rssh master delivers its environment's token to every
// session, OpenSSH's included; a host of another environment does not use
// it; an OpenSSH master whose SendEnv would drop the token is passed over
// (said at -v) and the token arrives on a direct connection.
func TestSharingToken(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, false)
	tok := w.op.Tokens
	dir := sockDir(t)
	sock := filepath.Join(dir, "prod")
	_, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "prod")
	waitSock(t, sock, exited, mlog)
	logins := func() int { return strings.Count(w.sshd.Log(), "Accepted publickey") }
	if r := w.ssh(nil, "-S", sock, "prod", showEnv); r.code != 0 || r.stdout != tok["production"]+"|production||\n" {
		t.Fatalf("ssh through the rssh master: %s", r)
	}
	if r := w.rssh(nil, "-v", "-S", sock, "prod", showEnv); r.code != 0 || r.stdout != tok["production"]+"|production||\n" {
		t.Fatalf("rssh through the rssh master: %s", r)
	}
	if n := logins(); n != 1 {
		t.Fatalf("%d logins, want the master's only", n)
	}
	r := w.rssh(nil, "-v", "-S", sock, "dev", showEnv)
	if r.code != 0 || r.stdout != tok["development"]+"|development||\n" || !strings.Contains(r.stderr, "not sharing the connection") {
		t.Fatalf("dev with prod's master: %s", r)
	}
	if n := logins(); n != 2 {
		t.Fatalf("dev did not connect directly (%d logins)", n)
	}

	osock := filepath.Join(dir, "ossh")
	_, olog, oexited := w.background("ssh", "-F", w.config, "-M", "-S", osock, "-N", "prod")
	waitSock(t, osock, oexited, olog)
	before := logins()
	r = w.rssh(nil, "-v", "-S", osock, "prod", showEnv)
	if r.code != 0 || r.stdout != tok["production"]+"|production||\n" ||
		!strings.Contains(r.stderr, "not rssh's: it filters the session's environment through its own SendEnv") {
		t.Fatalf("prod with an OpenSSH master: %s", r)
	}
	if logins() != before+1 {
		t.Fatal("rssh did not connect directly past the OpenSSH master")
	}
	// A session with no token may use an OpenSSH master.
	psock := filepath.Join(dir, "plain")
	_, plog, pexited := w.background("ssh", "-F", w.config, "-M", "-S", psock, "-N", "plain")
	waitSock(t, psock, pexited, plog)
	before = logins()
	if r := w.rssh(nil, "-S", psock, "plain", showEnv); r.code != 0 || r.stdout != "|||\n" || logins() != before {
		t.Fatalf("plain through the OpenSSH master: %s (%d logins, %d before)", r, logins(), before)
	}
}

// Acceptance 3: a stale socket; ControlMaster auto becomes the master in
// its place (ControlPersist no: it serves while its own session runs).
func TestSharingStaleSocket(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	sock := filepath.Join(sockDir(t), "stale")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	for _, cm := range []string{"no", "auto"} {
		want := w.ssh(nil, "-o", "ControlMaster="+cm, "-S", sock, "target", "echo direct")
		got := w.rssh(nil, "-o", "ControlMaster="+cm, "-S", sock, "target", "echo direct")
		if got.stdout != want.stdout || got.code != want.code || got.code != 0 ||
			strings.Contains(got.stderr, "Connection refused") != strings.Contains(want.stderr, "Connection refused") {
			t.Fatalf("ControlMaster %s with a stale socket: rssh %s\nssh %s", cm, got, want)
		}
	}
}

// Acceptance 3: ControlPersist: the first rssh leaves a master behind,
// the next goes through it; at expiry a session still open is waited for.
func TestSharingControlPersist(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	sock := filepath.Join(sockDir(t), "persist")
	opts := []string{"-o", "ControlMaster=auto", "-o", "ControlPersist=1", "-S", sock}
	vlog := filepath.Join(t.TempDir(), "first.log")
	if r := w.rssh(nil, append(opts, "-v", "-E", vlog, "target", "echo first")...); r.code != 0 || r.stdout != "first\n" {
		t.Fatalf("first: %s", r)
	}
	// The master rssh started took the TCP connection its parent made
	// while it started (the first run's speed depends on it).
	if b, _ := os.ReadFile(vlog); !strings.Contains(string(b), "made by the rssh that started this master") {
		t.Fatalf("the master dialed again instead of taking its parent's connection:\n%s", b)
	}
	check := w.ssh(nil, "-S", sock, "-O", "check", "target")
	if check.code != 0 {
		t.Fatalf("no master after the first run: %s", check)
	}
	pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(check.stderr, "Master running (pid="), ")\r\n"))
	if r := w.rssh(nil, append(opts, "target", "echo second")...); r.code != 0 || r.stdout != "second\n" {
		t.Fatalf("second: %s", r)
	}
	if n := strings.Count(w.sshd.Log(), "Accepted publickey"); n != 1 {
		t.Fatalf("%d logins for two runs", n)
	}
	// A session longer than ControlPersist: the master waits for it.
	long := exec.Command(rsshBin, append(append([]string{"-F", w.config}, opts...), "target", "sleep 2; echo long")...)
	long.Env = w.env
	out, err := long.Output()
	if err != nil || string(out) != "long\n" {
		t.Fatalf("long session: %q, %v", out, err)
	}
	if !gone(pid, 15*time.Second) {
		t.Fatal("master still running well after ControlPersist expired")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left: %v", err)
	}

	// As OpenSSH's forward-control test drives it: -M, ControlPersist,
	// -f and a -L that must be up once rssh has returned; -O exit ends it.
	echo := testenv.StartEcho(t)
	lport := freePort(t)
	r := w.rssh(nil, "-L", fmt.Sprintf("%d:127.0.0.1:%d", lport, echo.Addr().(*net.TCPAddr).Port),
		"-o", "ExitOnForwardFailure=yes", "-M", "-S", sock, "-o", "ControlPersist=yes", "-f", "target", "true")
	if r.code != 0 {
		t.Fatalf("-M -f with ControlPersist: %s", r)
	}
	echoVia(t, lport)
	if r := w.rssh(nil, "-S", sock, "-O", "exit", "target"); r.code != 0 {
		t.Fatalf("-O exit: %s", r)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after -O exit: %v", err)
	}

	// Nothing listens: the master-to-be's connection fails in the first
	// rssh, which says so as ssh does, once, and starts no master.
	closed := strconv.Itoa(freePort(t))
	dead := append([]string{"-p", closed}, opts...)
	got, want := w.rssh(nil, append(dead, "target", "true")...), w.ssh(nil, append(dead, "target", "true")...)
	if got.code != 255 || got.code != want.code || strings.Count(got.stderr, "Connection refused") != 1 ||
		strings.TrimPrefix(got.stderr, "rssh: ") != strings.ReplaceAll(strings.TrimPrefix(want.stderr, "ssh: "), "\r\n", "\n") {
		t.Fatalf("ControlPersist to a closed port: rssh %s\nssh %s", got, want)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket made for a closed port: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func echoVia(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("ping\n"))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo via %d: %q, %v", port, line, err)
	}
}

// Acceptance 3: the master (rssh's) killed while a session runs through
// it, rssh's client then OpenSSH's: each exits 255 at once.
func TestSharingMasterKilled(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	sock := filepath.Join(sockDir(t), "rssh")
	master, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)
	for _, client := range []string{rsshBin, w.sshBin()} {
		cmd := exec.Command(client, "-F", w.config, "-S", sock, "target", "echo started; sleep 60")
		cmd.Env = w.env
		out := new(testenv.Buffer)
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if !out.WaitFor("started", 20*time.Second) {
			t.Fatalf("%s: session did not start", client)
		}
		master.Process.Signal(syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s hung after its master went away", client)
		}
		if code := cmd.ProcessState.ExitCode(); code != 255 {
			t.Fatalf("%s exited %d, want 255", client, code)
		}
		if client == rsshBin {
			<-exited
			// The killed master left its socket: -M would refuse it, as
			// ssh -M does; ControlMaster auto replaces a stale one.
			master, mlog, exited = w.background(rsshBin, "-F", w.config, "-o", "ControlMaster=auto", "-S", sock, "-N", "target")
			waitSock(t, sock, exited, mlog)
		}
	}
}

// Acceptance 3: 100 sessions at once through one rssh master, OpenSSH's
// ssh -S and rssh -S half and half, each with its output and status; the
// sshd sees one login.
func TestSharingConcurrentSessions(t *testing.T) {
	w := &world{t: t, dir: t.TempDir()}
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{LogLevel: "INFO", Extra: "MaxSessions 200"})
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.sshd.Authorize(t, w.user, w.key)
	w.knownHosts = w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	w.writeConfig("\tLogLevel ERROR")
	home := filepath.Join(w.dir, "home")
	os.MkdirAll(home, 0o700)
	w.env = append(cleanEnv(), "HOME="+home, "SSH_AUTH_SOCK=")
	sock := filepath.Join(sockDir(t), "rssh")
	_, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)

	const n = 100
	errs := make(chan error, n)
	deadline := time.Now().Add(150 * time.Second)
	for i := 0; i < n; i++ {
		go func() {
			bin := rsshBin
			if i%2 == 1 {
				bin = w.sshBin()
			}
			cmd := exec.Command(bin, "-F", w.config, "-S", sock, "target", fmt.Sprintf("echo s%d; exit %d", i, i%50))
			cmd.Env = w.env
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				errs <- err
				return
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Until(deadline)):
				cmd.Process.Kill()
				<-done
			}
			if out.String() != fmt.Sprintf("s%d\n", i) || cmd.ProcessState.ExitCode() != i%50 {
				errs <- fmt.Errorf("session %d (%s): exit %d, %q", i, filepath.Base(bin), cmd.ProcessState.ExitCode(), out.String())
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if c := strings.Count(w.sshd.Log(), "Accepted publickey"); c != 1 {
		t.Errorf("%d logins for %d shared sessions", c, n)
	}
}

// Acceptance 1: git over ssh -S through an rssh master: a push and a
// clone, one login on the server.
func TestSharingGit(t *testing.T) {
	testenv.Need(t, "git", "git")
	w := newWorld(t, "", "\tLogLevel ERROR")
	sock := filepath.Join(sockDir(t), "rssh")
	_, mlog, exited := w.background(rsshBin, "-F", w.config, "-M", "-S", sock, "-N", "target")
	waitSock(t, sock, exited, mlog)
	repo := filepath.Join(w.remoteDir(), "r.git")
	if r := w.run(nil, "git", "init", "-q", "--bare", repo); r.code != 0 {
		t.Fatalf("git init: %s", r)
	}
	// The login user serves it: git refuses a repository of another owner.
	if out, err := exec.Command("chown", "-R", w.user, repo).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	work := filepath.Join(w.dir, "work")
	env := append(w.env, "GIT_SSH_COMMAND=ssh -F "+w.config+" -S "+sock,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example")
	saved := w.env
	w.env = env
	defer func() { w.env = saved }()
	for _, args := range [][]string{
		{"init", "-q", work},
		{"-C", work, "commit", "-q", "--allow-empty", "-m", "through the master"},
		{"-C", work, "push", "-q", "target:" + repo, "HEAD:refs/heads/main"},
		{"clone", "-q", "-b", "main", "target:" + repo, filepath.Join(w.dir, "clone")},
		{"-C", filepath.Join(w.dir, "clone"), "log", "--format=%s"},
	} {
		r := w.run(nil, "git", args...)
		if r.code != 0 {
			t.Fatalf("git %v: %s", args, r)
		}
		if args[len(args)-1] == "--format=%s" && r.stdout != "through the master\n" {
			t.Fatalf("clone has %q", r.stdout)
		}
	}
	if c := strings.Count(w.sshd.Log(), "Accepted publickey"); c != 1 {
		t.Errorf("%d logins: git did not go through the master", c)
	}
}

// ControlMaster ask: each use of the shared connection is confirmed with
// SSH_ASKPASS; a "no" (askpass fails) is OpenSSH's "Permission denied",
// upon which OpenSSH's client connects directly.
func TestSharingAsk(t *testing.T) {
	w := newWorld(t, "", "\tLogLevel ERROR")
	dir := sockDir(t)
	for _, c := range []struct {
		askpass string
		ok      bool
	}{{"/bin/true", true}, {"/bin/false", false}} {
		sock := filepath.Join(dir, filepath.Base(c.askpass))
		saved := w.env
		w.env = append(w.env, "SSH_ASKPASS="+c.askpass)
		_, mlog, exited := w.background(rsshBin, "-F", w.config, "-o", "ControlMaster=ask", "-S", sock, "-N", "target")
		w.env = saved
		waitSock(t, sock, exited, mlog)
		r := w.ssh(nil, "-S", sock, "target", "echo shared")
		if c.ok && (r.code != 0 || r.stdout != "shared\n") {
			t.Fatalf("askpass %s: %s", c.askpass, r)
		}
		// Refused, ssh says so and connects directly, as from any master.
		if !c.ok && (r.code != 0 || r.stdout != "shared\n" || !strings.Contains(r.stderr, "Master refused session request: Permission denied")) {
			t.Fatalf("askpass %s: %s", c.askpass, r)
		}
	}
}
