//go:build linux

package mux

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/rssh/rssh/internal/testenv"
)

// TestMasterExec: `ssh -S` through an rssh master gives the exit status
// and the stdout and stderr bytes of a direct ssh, and the session gets
// the environment the caller computed (the token), not what the client
// passed unless AcceptEnv lets it.
func TestMasterExec(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	var asked int
	var mu sync.Mutex
	sock, _ := r.master(&SSHHandler{
		Env: func(req *SessionRequest) ([]EnvVar, func(), error) {
			mu.Lock()
			asked++
			mu.Unlock()
			return []EnvVar{{Name: "OP_SERVICE_ACCOUNT_TOKEN", Value: []byte("tok-A")}}, nil, nil
		},
	}, ServerOptions{})
	want := run(t, r.ssh("-S", "none", "h", execCmd), "hello")
	got := run(t, r.ssh("-S", sock, "h", execCmd), "hello")
	if got != want || want.code != 3 {
		t.Fatalf("through the rssh master %+v, direct ssh %+v", got, want)
	}
	env := run(t, r.ssh("-S", sock, "-o", "SetEnv=RSSH_ENV=from-client", "h",
		`echo "$OP_SERVICE_ACCOUNT_TOKEN ${RSSH_ENV-unset}"`), "")
	if env.stdout != "tok-A unset\n" || env.code != 0 {
		t.Fatalf("env through the master: %+v", env)
	}
	mu.Lock()
	if asked != 2 {
		t.Errorf("Env asked %d times for 2 sessions", asked)
	}
	mu.Unlock()
}

// TestMasterAcceptEnv: the client's variables pass when the master's
// filter (its SendEnv) accepts them.
func TestMasterAcceptEnv(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.master(&SSHHandler{AcceptEnv: func(n string) bool { return n == "RSSH_ENV" }}, ServerOptions{})
	got := run(t, r.ssh("-S", sock, "-o", "SetEnv=RSSH_ENV=from-client", "h", `echo "${RSSH_ENV-unset}"`), "")
	if got.stdout != "from-client\n" {
		t.Fatalf("%+v", got)
	}
}

// TestMasterPTY: `ssh -tt -S` gets a terminal of the client's size and
// its exit status.
func TestMasterPTY(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.master(&SSHHandler{}, ServerOptions{})
	cmd := r.ssh("-tt", "-S", sock, "h", `test -t 0 && echo is-a-tty; stty size; exit 5`)
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
		t.Fatal("ssh -tt -S did not end")
	}
	got := <-out
	if cmd.ProcessState.ExitCode() != 5 || !strings.Contains(got, "is-a-tty\r\n") || !strings.Contains(got, "31 91\r\n") {
		t.Fatalf("exit %d, output %q", cmd.ProcessState.ExitCode(), got)
	}
}

// TestMasterControlCommands: -O check, forward (-L and -R 0), cancel,
// stop and exit from OpenSSH's ssh against an rssh master.
func TestMasterControlCommands(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	terminated := make(chan struct{})
	stopped := make(chan struct{}, 1)
	sock, srv := r.master(&SSHHandler{}, ServerOptions{
		Terminate:     func() { close(terminated) },
		StopListening: func() { stopped <- struct{}{} },
		Extensions:    [][2]string{{"env@rssh", "prod"}},
	})
	c, err := Dial(sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Extension("env@rssh"); !ok || v != "prod" {
		t.Fatalf("HELLO extensions %v", c.Extensions)
	}
	c.Close()
	check := run(t, r.ssh("-S", sock, "-O", "check", "h"), "")
	if check.code != 0 || check.stderr != fmt.Sprintf("Master running (pid=%d)\r\n", os.Getpid()) {
		t.Fatalf("-O check: %+v", check)
	}
	echo := testenv.StartEcho(t)
	echoPort := echo.Addr().(*net.TCPAddr).Port
	lport := freeTCPPort(t)
	lspec := fmt.Sprintf("%d:127.0.0.1:%d", lport, echoPort)
	if res := run(t, r.ssh("-S", sock, "-O", "forward", "-L", lspec, "h"), ""); res.code != 0 {
		t.Fatalf("-O forward -L: %+v", res)
	}
	echoThrough(t, lport)
	rres := run(t, r.ssh("-S", sock, "-O", "forward", "-R", fmt.Sprintf("0:127.0.0.1:%d", echoPort), "h"), "")
	rport, err := strconv.Atoi(strings.TrimSpace(rres.stdout))
	if rres.code != 0 || err != nil || rport == 0 {
		t.Fatalf("-O forward -R 0: %+v", rres)
	}
	echoThrough(t, rport)
	dport := freeTCPPort(t)
	if res := run(t, r.ssh("-S", sock, "-O", "forward", "-D", strconv.Itoa(dport), "h"), ""); res.code != 0 {
		t.Fatalf("-O forward -D: %+v", res)
	}
	socksEcho(t, dport, echoPort)
	if res := run(t, r.ssh("-S", sock, "-O", "cancel", "-L", lspec, "h"), ""); res.code != 0 {
		t.Fatalf("-O cancel: %+v", res)
	}
	if !waitFor(5*time.Second, func() bool { return !dials(lport) }) {
		t.Fatal("local forward still listening after -O cancel")
	}

	// A session open across -O stop carries on; the socket is gone.
	inR, inW, _ := os.Pipe()
	sess := r.ssh("-S", sock, "h", "cat; exit 7")
	var sessOut bytes.Buffer
	sess.Stdin, sess.Stdout = inR, &sessOut
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	if !waitFor(10*time.Second, func() bool { return srv.Active() == 1 }) {
		t.Fatal("session not live")
	}
	stop := run(t, r.ssh("-S", sock, "-O", "stop", "h"), "")
	if stop.code != 0 || stop.stderr != "Stop listening request sent.\r\n" {
		t.Fatalf("-O stop: %+v", stop)
	}
	<-stopped
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket after -O stop: %v", err)
	}
	inW.Write([]byte("still here\n"))
	inW.Close()
	if err := sess.Wait(); sess.ProcessState.ExitCode() != 7 || sessOut.String() != "still here\n" {
		t.Fatalf("session across -O stop: %v, %q", err, sessOut.String())
	}
}

// TestMasterExit: -O exit ends the master (after answering, as OpenSSH)
// and the socket is gone.
func TestMasterExit(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	terminated := make(chan struct{})
	sock, srv := r.master(&SSHHandler{}, ServerOptions{Terminate: func() { close(terminated) }})
	res := run(t, r.ssh("-S", sock, "-O", "exit", "h"), "")
	if res.code != 0 || res.stderr != "Exit request sent.\r\n" {
		t.Fatalf("-O exit: %+v", res)
	}
	select {
	case <-terminated:
	case <-time.After(10 * time.Second):
		t.Fatal("Terminate not called")
	}
	<-srv.Done()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket after -O exit: %v", err)
	}
	// rssh's own client waits for the master to let go.
	sock2, _ := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"}).master(&SSHHandler{}, ServerOptions{})
	c, err := Dial(sock2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Terminate(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock2); !os.IsNotExist(err) {
		t.Fatalf("socket after Terminate: %v", err)
	}
}

// TestMasterScpRsync: scp (SFTP, a subsystem) and scp -O (exec) and rsync
// through an rssh master copy files both ways intact.
func TestMasterScpRsync(t *testing.T) {
	testenv.Need(t, "scp", "openssh-client")
	testenv.Need(t, "rsync", "rsync")
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, _ := r.master(&SSHHandler{}, ServerOptions{})
	data := make([]byte, 3<<20)
	rand.Read(data)
	src := filepath.Join(r.dir, "src.bin")
	os.WriteFile(src, data, 0o644)
	remote, err := os.MkdirTemp("", "mux-remote-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(remote)
	os.Chmod(remote, 0o777)
	for i, args := range [][]string{
		{"scp", "-F", r.cfg, "-o", "ControlPath=" + sock, src, "h:" + remote + "/a.bin"},
		{"scp", "-O", "-F", r.cfg, "-o", "ControlPath=" + sock, "h:" + remote + "/a.bin", r.dir + "/b.bin"},
		{"rsync", "-e", "ssh -F " + r.cfg + " -S " + sock, r.dir + "/b.bin", "h:" + remote + "/c.bin"},
		{"rsync", "-e", "ssh -F " + r.cfg + " -S " + sock, "h:" + remote + "/c.bin", r.dir + "/d.bin"},
	} {
		if res := run(t, exec.Command(args[0], args[1:]...), ""); res.code != 0 {
			t.Fatalf("step %d %v: %+v", i, args, res)
		}
	}
	got, err := os.ReadFile(r.dir + "/d.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip through scp and rsync: %d bytes, %v", len(got), err)
	}
}

// TestMasterConcurrentSessions: 100 `ssh -S` sessions at once through one
// master, each with its own output and exit status.
func TestMasterConcurrentSessions(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO", Extra: "MaxSessions 200"})
	sock, srv := r.master(&SSHHandler{}, ServerOptions{})
	const n = 100
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, "ssh", "-F", r.cfg, "-S", sock, "h", fmt.Sprintf("echo s%d; exit %d", i, i%50))
			out, _ := cmd.Output()
			if string(out) != fmt.Sprintf("s%d\n", i) || cmd.ProcessState.ExitCode() != i%50 {
				errs <- fmt.Errorf("session %d: exit %d, %q", i, cmd.ProcessState.ExitCode(), out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !waitFor(10*time.Second, func() bool { return srv.Active() == 0 }) {
		t.Fatalf("%d sessions still counted live", srv.Active())
	}
}

// socksEcho asks the SOCKS5 server on port for 127.0.0.1:target and
// expects the echo server there.
func socksEcho(t *testing.T, port, target int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{5, 1, 0})
	b := make([]byte, 10)
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[0] != 5 || b[1] != 0 {
		t.Fatalf("SOCKS greeting % x, %v", b[:2], err)
	}
	c.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, byte(target >> 8), byte(target)})
	if _, err := io.ReadFull(c, b); err != nil || b[1] != 0 {
		t.Fatalf("SOCKS connect % x, %v", b, err)
	}
	c.Write([]byte("socks\n"))
	if _, err := io.ReadFull(c, b[:6]); err != nil || string(b[:6]) != "socks\n" {
		t.Fatalf("through SOCKS: %q, %v", b[:6], err)
	}
}
