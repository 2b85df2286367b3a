package integration

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// A host name that does not resolve: the same line as ssh's, "ssh: " read as
// "rssh: ", and 255. Both run in a network namespace of their own with no
// network, so the lookup fails without a packet leaving the machine.
func TestUnresolvableHostAsSSH(t *testing.T) {
	sshBin := testenv.Need(t, "ssh", "openssh-client")
	unshare := testenv.Need(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare -n")
	}
	run := func(bin string) (string, int) {
		cmd := exec.Command(unshare, "-n", bin, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectionAttempts=3", "rssh-test.invalid", "true")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return errb.String(), code
	}
	sshErr, sshCode := run(sshBin)
	rsshErr, rsshCode := run(rsshBin)
	// ssh ends its lines with \r\n here (in case a terminal is raw).
	if want := "r" + strings.ReplaceAll(sshErr, "\r\n", "\n"); rsshErr != want || rsshCode != sshCode || sshCode != 255 {
		t.Errorf("ssh: exit %d %q\nrssh: exit %d %q, want the same line and status", sshCode, sshErr, rsshCode, rsshErr)
	}
}

// SIGTERM while connecting: ssh has no handler then, dies by the signal and
// prints nothing; so does rssh (it used to say "context canceled").
func TestSignalWhileConnectingAsSSH(t *testing.T) {
	sshBin := testenv.Need(t, "ssh", "openssh-client")
	for _, bin := range []string{sshBin, rsshBin} {
		// A server that accepts and never sends its banner holds the client
		// in the connect phase for as long as the test needs.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := l.Accept(); err == nil {
				accepted <- c
			}
		}()
		port := l.Addr().(*net.TCPAddr).Port
		cmd := exec.Command(bin, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=60", "-p", testenv.Itoa(port), "127.0.0.1", "true")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-accepted:
			defer c.Close()
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s never connected", bin)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s did not end on SIGTERM", bin)
		}
		l.Close()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM || strings.TrimSpace(errb.String()) != "" {
			t.Errorf("%s on SIGTERM while connecting: %v, stderr %q; want death by SIGTERM and nothing printed", bin, cmd.ProcessState, errb.String())
		}
	}
}

// An unknown host with BatchMode and the default StrictHostKeyChecking ask:
// ssh cannot ask, so it says only that verification failed; rssh says the
// same (not "strict checking is requested", which nobody asked for), with
// the fingerprint in its hint.
func TestUnknownHostInBatchModeAsSSH(t *testing.T) {
	w := newWorld(t, "", "")
	os.WriteFile(w.knownHosts, nil, 0o600)
	args := []string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=ask", "target", "true"}
	s, r := w.ssh(nil, args...), w.rssh(nil, args...)
	if s.code != 255 || !strings.Contains(s.stderr, "Host key verification failed.") {
		t.Fatalf("ssh: %s", s)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	if r.code != 255 || first != "rssh: host key verification failed" || !strings.Contains(r.stderr, "rssh: hint: ") {
		t.Errorf("rssh: %s", r)
	}
}
