//go:build linux

package mux

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

// rig is one sshd with an ssh_config that reaches it as "h", and a short
// socket directory (sun_path is 108 bytes; t.TempDir() can be long).
type rig struct {
	t    *testing.T
	sshd *testenv.SSHD
	key  *testenv.Key
	user string
	dir  string
	cfg  string
	// osshLog is the last OpenSSH master's stderr.
	osshLog *testenv.Buffer
}

func newRig(t *testing.T, opts testenv.SSHDOptions, extra ...string) *rig {
	t.Helper()
	testenv.Need(t, "ssh", "openssh-client")
	sshd := testenv.StartSSHD(t, opts)
	dir, err := os.MkdirTemp("", "mux-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	user := testenv.LoginUser(t)
	key := testenv.NewKey(t, dir, "id")
	sshd.Authorize(t, user, key)
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(sshd.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ssh_config")
	block := sshd.HostBlock("h", user, key.Path, kh, append([]string{"LogLevel ERROR"}, extra...)...)
	if err := os.WriteFile(cfg, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log := sshd.Log()
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			t.Logf("sshd log tail:\n%s", log)
		}
	})
	return &rig{t: t, sshd: sshd, key: key, user: user, dir: dir, cfg: cfg}
}

// ssh is OpenSSH's ssh with the rig's config.
func (r *rig) ssh(args ...string) *exec.Cmd {
	return exec.Command("ssh", append([]string{"-F", r.cfg}, args...)...)
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: timed out\nstdout: %s\nstderr: %s", cmd.Args, out.String(), errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// openSSHMaster starts `ssh -M -S SOCK -N h` and waits for its socket.
func (r *rig) openSSHMaster(extra ...string) (sock string, cmd *exec.Cmd) {
	r.t.Helper()
	sock = filepath.Join(r.dir, "ossh.sock")
	args := append([]string{"-M", "-S", sock, "-N"}, extra...)
	cmd = r.ssh(append(args, "h")...)
	errb := new(testenv.Buffer)
	r.osshLog = errb
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	if err := testenv.WaitSocket(sock, exited, 20*time.Second); err != nil {
		r.t.Fatalf("OpenSSH master: %v\n%s", err, errb.String())
	}
	return sock, cmd
}

// client is an x/crypto connection to the rig's sshd.
func (r *rig) client() *ssh.Client {
	r.t.Helper()
	c, err := ssh.Dial("tcp", r.sshd.Addr, &ssh.ClientConfig{
		User:            r.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(r.key.Signer)},
		HostKeyCallback: ssh.FixedHostKey(r.sshd.HostKey.PublicKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// master serves an rssh master backed by an x/crypto connection on a
// socket in the rig's dir.
func (r *rig) master(h *SSHHandler, opts ServerOptions) (string, *Server) {
	r.t.Helper()
	if h.Client == nil {
		h.Client = r.client()
	}
	sock := filepath.Join(r.dir, "rssh.sock")
	l, err := Listen(sock)
	if err != nil {
		r.t.Fatal(err)
	}
	s := NewServer(h, opts)
	served := make(chan struct{})
	go func() { s.Serve(l); close(served) }()
	r.t.Cleanup(func() {
		s.Shutdown()
		<-served
	})
	return sock, s
}

// tempFile is a file for a session's stdio, read back afterwards.
func tempFile(t *testing.T, content string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdio")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Seek(0, 0)
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}
