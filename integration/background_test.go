package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runDetaching runs a program whose -f child keeps stdout and stderr: they
// are files, not pipes (a pipe would stay open, and Wait with it, for as
// long as the background process lives, exactly as with OpenSSH's ssh -f).
// The stdout file's path comes back too, for output written later.
func runDetaching(t *testing.T, w *world, program string, args ...string) (result, string) {
	t.Helper()
	out, _ := os.CreateTemp(t.TempDir(), "stdout")
	errf, _ := os.CreateTemp(t.TempDir(), "stderr")
	defer out.Close()
	defer errf.Close()
	cmd := exec.Command(program, args...)
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s %q did not return within 30 s", program, args)
	}
	r := result{code: 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	r.stdout, r.stderr = string(o), string(e)
	return r, out.Name()
}

// backgroundOf finds the process left running with marker in its argv, and
// kills it when the test ends.
func backgroundOf(t *testing.T, marker string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if strings.Contains(string(b), marker) && strings.HasPrefix(string(b), rsshBin) {
				t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background rssh with %q in its argv", marker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionLeader reports whether pid leads its own session (setsid, as
// daemon(3) does): it no longer belongs to the caller's terminal.
func sessionLeader(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	sid, _ := strconv.Atoi(f[3]) // state ppid pgrp session
	return sid == pid
}

// rssh -f -N -L returns 0 once the forward is up and keeps it in the
// background, in a session of its own, as ssh -fN does.
func TestForkAfterAuthForward(t *testing.T) {
	w := newWorld(t, "", "")
	port := freeLocalPort(t)
	r, _ := runDetaching(t, w, rsshBin, "-F", w.config, "-f", "-N", "-L", fmt.Sprintf("%d:127.0.0.1:%d", port, w.sshd.Port), "target")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("rssh -f -N -L: %s", r)
	}
	pid := backgroundOf(t, fmt.Sprintf("%d:127.0.0.1:%d", port, w.sshd.Port))
	if !sessionLeader(t, pid) {
		t.Errorf("the background rssh (pid %d) did not leave the terminal's session", pid)
	}
	// The forward was up before rssh returned: no waiting here.
	conn, banner, err := sshBanner(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil || !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
		t.Fatalf("the background forward gave %q, %v", banner, err)
	}
	conn.Close()
	// SIGTERM ends it, as it ends ssh -N.
	syscall.Kill(pid, syscall.SIGTERM)
	if !pollUntil(10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
		t.Fatalf("the background rssh outlived SIGTERM")
	}
}

// rssh -f host cmd returns while the command still runs, and the command
// carries on to the end in the background; its output still reaches the
// caller's stdout, as with ssh -f.
func TestForkAfterAuthCommand(t *testing.T) {
	w := newWorld(t, "", "")
	dir := w.remoteDir()
	gate, done := filepath.Join(dir, "go"), filepath.Join(dir, "done")
	remote := fmt.Sprintf("while [ ! -e %s ]; do sleep 0.05; done; echo finished > %s; echo to-stdout", gate, done)
	r, stdout := runDetaching(t, w, rsshBin, "-F", w.config, "-f", "target", remote)
	if r.code != 0 {
		t.Fatalf("rssh -f: %s", r)
	}
	if _, err := os.Stat(done); err == nil {
		t.Fatal("rssh -f returned after the command had finished, not before")
	}
	backgroundOf(t, gate)
	os.WriteFile(gate, nil, 0o644)
	if !pollUntil(10*time.Second, func() bool {
		b, _ := os.ReadFile(stdout)
		return strings.Contains(string(b), "to-stdout")
	}) {
		t.Fatal("the command did not finish in the background, or its output did not reach stdout")
	}
}

// Failures before the fork are the caller's: exit 255 and the message, from
// rssh as from ssh; and -f without a command is refused before connecting.
func TestForkAfterAuthFailures(t *testing.T) {
	w := newWorld(t, "", "")
	for _, prog := range []string{rsshBin, w.sshBin()} {
		r, _ := runDetaching(t, w, prog, "-F", w.config, "-f", "-o", "User=nobody-here", "target", "true")
		if r.code != 255 || !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("%s -f with a refused login: %s", filepath.Base(prog), r)
		}
		r, _ = runDetaching(t, w, prog, "-F", w.config, "-f", "target")
		if r.code != 255 || !strings.Contains(strings.ToLower(r.stderr), "cannot fork into background without a command") {
			t.Errorf("%s -f without a command: %s", filepath.Base(prog), r)
		}
	}
}
