//go:build linux

package mux

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/rssh/rssh/internal/testenv"
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
