//go:build linux

package mux

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/rssh/rssh/internal/testenv"
)

// The exec command of the equality tests: both streams, an exit status,
// and stdin read through.
const execCmd = `printf 'out:%s\n' "$(cat)"; printf 'err line\n' >&2; exit 3`

// TestClientExecOpenSSHMaster: an exec session through an OpenSSH master
// gives the exit status and the stdout and stderr bytes of a direct ssh.
func TestClientExecOpenSSHMaster(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.openSSHMaster()
	want := run(t, r.ssh("-S", "none", "h", execCmd), "hello")

	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stdin, stdout, stderr := tempFile(t, "hello"), tempFile(t, ""), tempFile(t, "")
	code, err := c.Session(context.Background(), SessionRequest{EscapeChar: EscapeNone, Term: "dumb", Command: execCmd},
		SessionOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	if err != nil {
		t.Fatal(err)
	}
	got := result{readAll(t, stdout), readAll(t, stderr), code}
	if got != want {
		t.Fatalf("through the OpenSSH master %+v, direct ssh %+v", got, want)
	}
	if want.code != 3 || want.stdout != "out:hello\n" {
		t.Fatalf("direct ssh: %+v", want)
	}
}

// TestClientPTYOpenSSHMaster: a PTY session through an OpenSSH master
// gets a terminal and its exit status.
func TestClientPTYOpenSSHMaster(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.openSSHMaster()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 33, Cols: 77})
	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() { b, _ := io.ReadAll(ptmx); out <- string(b) }()
	code, err := c.Session(context.Background(), SessionRequest{TTY: true, EscapeChar: '~', Term: "xterm",
		Command: `test -t 0 && echo is-a-tty; stty size; exit 4`},
		SessionOptions{Stdin: tty, Stdout: tty, Stderr: tty, Opened: func() { term.MakeRaw(int(tty.Fd())) }})
	if err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var got string
	select {
	case got = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("pty output did not end")
	}
	if code != 4 || !strings.Contains(got, "is-a-tty\r\n") || !strings.Contains(got, "33 77\r\n") {
		t.Fatalf("code %d, output %q", code, got)
	}
}

// TestClientStdioForwardOpenSSHMaster: -W through an OpenSSH master
// reaches the target (the sshd itself: its banner comes back).
func TestClientStdioForwardOpenSSHMaster(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.openSSHMaster()
	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	defer inW.Close()
	errc := make(chan error, 1)
	go func() {
		errc <- c.StdioForward(context.Background(), "127.0.0.1", uint32(r.sshd.Port), inR, outW)
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-OpenSSH") {
		t.Fatalf("banner %q, %v", line, err)
	}
	inW.Close() // EOF to the target: sshd closes, the forward ends
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stdio forward did not end")
	}
	inR.Close()
	outW.Close()
}

// TestClientForwardsOpenSSHMaster: -L and -R (port 0, with the allocated
// port in the reply) and their cancellation through an OpenSSH master.
func TestClientForwardsOpenSSHMaster(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.openSSHMaster()
	echo := testenv.StartEcho(t)
	echoPort := uint32(echo.Addr().(*net.TCPAddr).Port)
	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lport := freeTCPPort(t)
	local := Forward{Type: FwdLocal, ListenPort: uint32(lport), ConnectHost: "127.0.0.1", ConnectPort: echoPort}
	if _, err := c.OpenForward(local); err != nil {
		t.Fatal(err)
	}
	echoThrough(t, lport)
	remote := Forward{Type: FwdRemote, ConnectHost: "127.0.0.1", ConnectPort: echoPort}
	rport, err := c.OpenForward(remote)
	if err != nil || rport == 0 {
		t.Fatalf("remote forward: port %d, %v", rport, err)
	}
	echoThrough(t, rport)
	if err := c.CloseForward(local); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return !dials(lport) }) {
		t.Fatal("local forward still listening after cancel")
	}
	var re *RefusedError
	if err := c.CloseForward(local); !errors.As(err, &re) || re.Reason != "port not forwarded" {
		t.Fatalf("second cancel: %v", err)
	}
}

// TestClientCheckExitOpenSSHMaster: -O check reports the master's pid and
// -O exit ends it (its socket is gone when Terminate returns).
func TestClientCheckExitOpenSSHMaster(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, cmd := r.openSSHMaster()
	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := c.AliveCheck()
	if err != nil || pid != cmd.Process.Pid {
		t.Fatalf("alive check: pid %d (master %d), %v", pid, cmd.Process.Pid, err)
	}
	if _, ok := c.Extension("env@rssh"); ok {
		t.Fatal("an OpenSSH master offered rssh's extension")
	}
	c2, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.StopListening(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket after stop: %v", err)
	}
	if err := c.Terminate(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return syscall.Kill(cmd.Process.Pid, 0) != nil }) {
		t.Fatal("master still running after exit")
	}

}

// TestClientMasterKilled: an OpenSSH master killed mid-session makes the
// session end with 255 and ErrNoExitStatus, without hanging.
func TestClientMasterKilled(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, cmd := r.openSSHMaster()
	c, err := Dial(sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	stdin, stdout := tempFile(t, ""), tempFile(t, "")
	res := make(chan error, 1)
	var code int
	go func() {
		var err error
		code, err = c.Session(context.Background(), SessionRequest{EscapeChar: EscapeNone, Command: "echo started; sleep 60"},
			SessionOptions{Stdin: stdin, Stdout: stdout, Stderr: stdout})
		res <- err
	}()
	if !waitFor(20*time.Second, func() bool { return strings.Contains(readAll(t, stdout), "started") }) {
		t.Fatal("session did not start")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-res:
		if code != 255 || !errors.Is(err, ErrNoExitStatus) {
			t.Fatalf("code %d, err %v", code, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("session hung after the master was killed")
	}
}

// TestClientTokenDroppedByOpenSSHMaster is why rssh connects directly
// when an OpenSSH master would carry its token: the master filters the
// session's environment through its own SendEnv, so without a matching
// pattern the variable never arrives.
func TestClientTokenDroppedByOpenSSHMaster(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	show := `echo "${OP_SERVICE_ACCOUNT_TOKEN-unset}"`
	for _, tc := range []struct {
		sendEnv string
		want    string
	}{{"", "unset\n"}, {"OP_SERVICE_ACCOUNT_TOKEN", "tok-1\n"}} {
		var extra []string
		if tc.sendEnv != "" {
			extra = []string{"-o", "SendEnv=" + tc.sendEnv}
		}
		sock, cmd := r.openSSHMaster(extra...)
		c, err := Dial(sock, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stdin, stdout := tempFile(t, ""), tempFile(t, "")
		if _, err := c.Session(context.Background(), SessionRequest{EscapeChar: EscapeNone, Command: show,
			Env: []string{"OP_SERVICE_ACCOUNT_TOKEN=tok-1"}}, SessionOptions{Stdin: stdin, Stdout: stdout, Stderr: stdout}); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, stdout); got != tc.want {
			t.Errorf("master SendEnv %q: got %q, want %q", tc.sendEnv, got, tc.want)
		}
		c2, _ := Dial(sock, 10*time.Second)
		c2.Terminate(10 * time.Second)
		waitFor(10*time.Second, func() bool { return syscall.Kill(cmd.Process.Pid, 0) != nil })
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func dials(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// echoThrough sends a line through 127.0.0.1:port to the echo server.
func echoThrough(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("ping\n"))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo through port %d: %q, %v", port, line, err)
	}
}
