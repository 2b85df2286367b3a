//go:build linux

package mux

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
	xagent "golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/testenv"
	"github.com/rssh/rssh/sshproxy"
)

// TestProxyExec: `ssh -O proxy` through an rssh master gives the exit
// statuses and stdout/stderr bytes of a direct ssh, with the master's env
// requests (the token) on each session, also for the regress test's early
// close of stdout and stderr.
func TestProxyExec(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, srv := r.master(&SSHHandler{
		Env: func(req *SessionRequest) ([]EnvVar, func(), error) {
			return []EnvVar{{Name: "OP_SERVICE_ACCOUNT_TOKEN", Value: []byte("tok-A")}}, nil, nil
		},
	}, ServerOptions{})
	for _, s := range []int{0, 1, 4, 5, 44} {
		cmd := fmt.Sprintf("echo out; echo err >&2; exit %d", s)
		want := run(t, r.ssh("-S", "none", "h", cmd), "")
		got := run(t, r.ssh("-S", sock, "-O", "proxy", "h", cmd), "")
		if got != want || want.code != s {
			t.Fatalf("status %d: proxy %+v, direct %+v", s, got, want)
		}
		early := run(t, r.ssh("-S", sock, "-O", "proxy", "-n", "h",
			fmt.Sprintf(`exec sh -c 'sleep 2; exec >/dev/null 2>&1; sleep 3; exit %d'`, s)), "")
		if early.code != s {
			t.Fatalf("status %d with early close: %+v", s, early)
		}
		if s == 44 {
			break
		}
	}
	env := run(t, r.ssh("-S", sock, "-O", "proxy", "h", `echo "$OP_SERVICE_ACCOUNT_TOKEN"`), "")
	if env.stdout != "tok-A\n" || env.code != 0 {
		t.Fatalf("env through proxy mode: %+v", env)
	}
	if !waitFor(10*time.Second, func() bool { return srv.Active() == 0 }) {
		t.Fatalf("%d proxy clients still counted live", srv.Active())
	}
}

// TestProxyBulk: several MiB both ways through proxy mode, byte for byte
// (the client's window and packet size are what the relay honours).
func TestProxyBulk(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.master(&SSHHandler{}, ServerOptions{})
	data := make([]byte, 6<<20)
	rand.Read(data)
	remote, err := os.MkdirTemp("", "mux-proxy-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(remote)
	os.Chmod(remote, 0o777)
	src := filepath.Join(remote, "src.bin")
	os.WriteFile(src, data, 0o644)
	// Out: the remote cats the file (stdout) and a second copy to stderr.
	cmd := r.ssh("-S", sock, "-O", "proxy", "h", "cat "+src+"; cat "+src+" >&2; exit 3")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := runCmd(t, cmd); cmd.ProcessState.ExitCode() != 3 || !bytes.Equal(out.Bytes(), data) || !bytes.Equal(errb.Bytes(), data) {
		t.Fatalf("out: exit %d (%v), %d and %d bytes of %d %.200q", cmd.ProcessState.ExitCode(), err, out.Len(), errb.Len(), len(data), errb.String())
	}
	// In: stdin to the remote's file, read back.
	dst := filepath.Join(remote, "dst.bin")
	cmd = r.ssh("-S", sock, "-O", "proxy", "h", "cat > "+dst)
	cmd.Stdin = bytes.NewReader(data)
	if err := runCmd(t, cmd); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatalf("in: %d bytes of %d", len(got), len(data))
	}
}

func runCmd(t *testing.T, cmd interface {
	Start() error
	Wait() error
}) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(90 * time.Second):
		t.Fatal("timed out")
	}
	return nil
}

// TestProxyPTY: `ssh -tt -O proxy` gets a terminal of the client's size
// and its exit status.
func TestProxyPTY(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.master(&SSHHandler{}, ServerOptions{})
	cmd := r.ssh("-tt", "-S", sock, "-O", "proxy", "h", `test -t 0 && echo is-a-tty; stty size; exit 5`)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 31, Cols: 91})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := make(chan string, 1)
	go func() { b, _ := io.ReadAll(ptmx); out <- string(b) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("ssh -tt -O proxy did not end")
	}
	got := <-out
	if cmd.ProcessState.ExitCode() != 5 || !strings.Contains(got, "is-a-tty\r\n") || !strings.Contains(got, "31 91\r\n") {
		t.Fatalf("exit %d, output %q", cmd.ProcessState.ExitCode(), got)
	}
}

// TestProxyLocalForward: `ssh -O proxy -L` opens its direct-tcpip
// channels through the master; two proxy clients run at once.
func TestProxyLocalForward(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, srv := r.master(&SSHHandler{}, ServerOptions{})
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	var ports []int
	for i := 0; i < 2; i++ {
		lport := freeTCPPort(t)
		cmd := r.ssh("-S", sock, "-O", "proxy", "-N", "-L", fmt.Sprintf("%d:127.0.0.1:%d", lport, echoPort), "h")
		errb := new(testenv.Buffer)
		cmd.Stderr = errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		if !waitFor(20*time.Second, func() bool { return dials(lport) }) {
			t.Fatalf("-L through proxy mode never listened: %s", errb.String())
		}
		ports = append(ports, lport)
	}
	if n := srv.Active(); n != 2 {
		t.Fatalf("%d proxy clients counted live, want 2", n)
	}
	for _, p := range ports {
		echoThrough(t, p)
		echoThrough(t, p)
	}
}

// TestProxyClientKilled: a proxy client killed mid-session ends only its
// own channels; the master serves the next client.
func TestProxyClientKilled(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, srv := r.master(&SSHHandler{}, ServerOptions{})
	cmd := r.ssh("-S", sock, "-O", "proxy", "h", "echo started; sleep 60")
	out := new(testenv.Buffer)
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	if !out.WaitFor("started", 20*time.Second) {
		cmd.Process.Kill()
		t.Fatalf("session did not start: %q", out.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	if !waitFor(10*time.Second, func() bool { return srv.Active() == 0 }) {
		t.Fatalf("%d clients still live after the proxy client was killed", srv.Active())
	}
	got := run(t, r.ssh("-S", sock, "-O", "proxy", "h", "echo next; exit 6"), "")
	if got.stdout != "next\n" || got.code != 6 {
		t.Fatalf("next proxy client: %+v", got)
	}
}

// TestProxyMasterKilled: the master killed while `ssh -O proxy` runs a
// session through it: the client exits 255 and does not hang.
func TestProxyMasterKilled(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock := filepath.Join(r.dir, "killed.sock")
	master := exec.Command(os.Args[0], "-test.run=^TestHelperMasterProcess$", "-test.count=1")
	master.Env = append(os.Environ(), "MUX_HELPER_SOCK="+sock, "MUX_HELPER_KEY="+r.key.Path,
		"MUX_HELPER_ADDR="+r.sshd.Addr, "MUX_HELPER_USER="+r.user)
	var mlog bytes.Buffer
	master.Stdout, master.Stderr = &mlog, &mlog
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { master.Wait(); close(exited) }()
	t.Cleanup(func() { master.Process.Kill(); <-exited })
	if err := testenv.WaitSocket(sock, exited, 20*time.Second); err != nil {
		t.Fatalf("helper master: %v\n%s", err, mlog.String())
	}
	client := r.ssh("-S", sock, "-O", "proxy", "h", "echo started; sleep 60")
	out := new(testenv.Buffer)
	client.Stdout = out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { client.Wait(); close(done) }()
	if !out.WaitFor("started", 20*time.Second) {
		client.Process.Kill()
		t.Fatalf("session did not start: %q\n%s", out.String(), mlog.String())
	}
	master.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		client.Process.Kill()
		t.Fatal("ssh -O proxy hung after the master was killed")
	}
	if code := client.ProcessState.ExitCode(); code != 255 {
		t.Fatalf("ssh -O proxy exited %d, want 255", code)
	}
}

// TestProxyMalformed: a proxy client that breaks the protocol (a
// truncated message, a channel it never opened, data beyond its window)
// is dropped with a log line; the master serves the next one.
func TestProxyMalformed(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	logb := new(testenv.Buffer)
	sock, _ := r.master(&SSHHandler{Log: slog.New(slog.NewTextHandler(logb, nil))}, ServerOptions{})
	open := (&proxyMsg{Type: msgChannelOpen, Name: "session", Sender: 9, Window: 1 << 20, MaxPacket: 1 << 15}).marshal()
	for i, bad := range [][]byte{
		appendProxyPacket(nil, []byte{msgChannelData, 0, 0}),
		appendProxyPacket(nil, (&proxyMsg{Type: msgChannelEOF, Recipient: 77}).marshal()),
		{0, 0, 0, 1},
		{0xff, 0, 0, 0, 0},
		appendProxyPacket(nil, []byte{20, 1, 2, 3}), // KEXINIT: not connection protocol
		append(appendProxyPacket(nil, open), appendProxyPacket(nil, (&proxyMsg{Type: msgChannelData, Recipient: 1, Data: make([]byte, 40000)}).marshal())...),
	} {
		c, err := Dial(sock, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		pc, _, _, err := c.Proxy()
		if err != nil {
			t.Fatal(err)
		}
		c.conn.Write(bad)
		done := make(chan error, 1)
		go func() { done <- pc.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("case %d: the master kept a client that broke the protocol", i)
		}
		if !waitFor(5*time.Second, func() bool { return strings.Count(logb.String(), "mux proxy client dropped") > i }) {
			t.Fatalf("case %d: no log line: %s", i, logb.String())
		}
		pc.Close()
	}
	got := run(t, r.ssh("-S", sock, "-O", "proxy", "h", "echo fine"), "")
	if got.stdout != "fine\n" || got.code != 0 {
		t.Fatalf("after the bad clients: %+v", got)
	}
}

// TestProxyAgent: OpenSSH's ssh -A in proxy mode gets no agent through
// an rssh master (it would crash on an agent channel there: it has no
// key exchange to bind the agent to), as -a gets none; a client that says
// in its HELLO that it takes agent channels gets the server's for its
// session. The agent's answers are the direct ones.
func TestProxyAgent(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO", Extra: "AllowAgentForwarding yes"})
	sock, _ := r.master(&SSHHandler{}, ServerOptions{})
	agent := testenv.StartAgent(t)
	agent.Add(t, r.key)
	withAgent := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+agent.Sock)
		return cmd
	}
	want := run(t, withAgent(r.ssh("-a", "-S", "none", "h", "ssh-add -l")), "")
	for _, flag := range []string{"-A", "-a"} {
		got := run(t, withAgent(r.ssh(flag, "-S", sock, "-O", "proxy", "h", "ssh-add -l")), "")
		if got != want || want.code != 2 {
			t.Fatalf("ssh %s -O proxy: %+v, direct -a %+v", flag, got, want)
		}
	}
	// A client of our own that takes agent channels.
	c, err := Dial(sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := c.Proxy()
	if err != nil {
		t.Fatal(err)
	}
	cl := ssh.NewClient(conn, chans, reqs)
	defer cl.Close()
	if err := xagent.ForwardToRemote(cl, agent.Sock); err != nil {
		t.Fatal(err)
	}
	sess, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := xagent.RequestAgentForwarding(sess); err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("ssh-add -l")
	want = run(t, withAgent(r.ssh("-A", "-S", "none", "h", "ssh-add -l")), "")
	if err != nil || string(out) != want.stdout || !strings.Contains(want.stdout, "ED25519") {
		t.Fatalf("agent through proxy mode: %q, %v; direct %+v", out, err, want)
	}
}

// TestProxyRemoteForward: `ssh -O proxy -R 0:…` gets the port the server
// chose in the reply to its tcpip-forward (which OpenSSH's master never
// passes back) and the server's channels for it; when the client goes,
// so does its forward.
func TestProxyRemoteForward(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	conn := sshproxy.NewConn(r.client(), &config.Config{})
	logb := new(testenv.Buffer)
	sock, _ := r.master(&SSHHandler{Client: conn.Client,
		RemoteForward: func(host string, port uint32, path string, serve func(ssh.NewChannel)) (io.Closer, uint32, error) {
			stop, p, err := conn.ListenRemoteChannels(host, int(port), path, slog.New(slog.NewTextHandler(logb, nil)), serve)
			return stop, uint32(p), err
		}}, ServerOptions{})
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	cmd := r.ssh("-S", sock, "-O", "proxy", "-N", "-o", "LogLevel INFO", "-R", fmt.Sprintf("0:127.0.0.1:%d", echoPort), "h")
	errb := new(testenv.Buffer)
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	if !errb.WaitFor("Allocated port ", 20*time.Second) {
		t.Fatalf("no allocated port: %q", errb.String())
	}
	var port int
	s := errb.String()
	fmt.Sscanf(s[strings.Index(s, "Allocated port ")+len("Allocated port "):], "%d", &port)
	if !waitFor(10*time.Second, func() bool { return dials(port) }) {
		t.Fatalf("port %d not listening: %q\n%s", port, s, logb.String())
	}
	echoThrough(t, port)
	echoThrough(t, port)
	if strings.Contains(logb.String(), "WARNING") {
		t.Fatalf("forwarded channels not routed: %s", logb.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if !waitFor(10*time.Second, func() bool { return !dials(port) }) {
		t.Fatalf("port %d still forwarded after its proxy client went", port)
	}
}
