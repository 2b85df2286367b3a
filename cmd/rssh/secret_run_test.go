package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/rssh/rssh/internal/testenv"
	"github.com/rssh/rssh/secret"
)

// startRSSH starts rssh in a session of its own (no controlling
// terminal: a signal the test sends is the only one CMD gets).
func (w *secretWorld) startRSSH(stdin []byte, args ...string) (*exec.Cmd, *testenv.Buffer, *testenv.Buffer) {
	w.t.Helper()
	cmd := exec.Command(w.rssh, args...)
	cmd.Env = w.env
	cmd.Stdin = bytes.NewReader(stdin)
	out, errb := &testenv.Buffer{}, &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	// rssh leads its own process group: this ends CMD too.
	w.t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd, out, errb
}

// waitExit waits for cmd's exit status, killing it after d.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Errorf("%q still running after %v", cmd.Args, d)
	}
	return cmd.ProcessState.ExitCode()
}

// Acceptance 1 and 2, run: every op:// variable of the environment and of
// the env files (the later file winning) reaches CMD byte for byte through
// one op run; CMD's output is masked unless --no-masking; no value or token
// is in any argv while op runs or while CMD runs; no shell sees a value;
// the token is not in CMD's environment unless --keep-token.
func TestSecretRunFakeOp(t *testing.T) {
	w := newSecretWorld(t)
	env1 := filepath.Join(w.dir, "one.env")
	env2 := filepath.Join(w.dir, "two.env")
	os.WriteFile(env1, []byte("# first\nFROM_FILE="+w.refs["unicode"]+"\nOVERRIDDEN="+w.refs["subst"]+"\n"), 0o600)
	os.WriteFile(env2, []byte("OVERRIDDEN=\""+w.refs["quotes"]+"\"\nexport PLAIN='kept as is'\n"), 0o600)
	var vars []string
	for _, n := range w.names {
		w.env = append(w.env, "S_"+n+"="+w.refs[n])
		vars = append(vars, "S_"+n)
	}
	vars = append(vars, "FROM_FILE", "OVERRIDDEN", "PLAIN")
	var want [][]byte
	for _, n := range w.names {
		want = append(want, w.values[n])
	}
	want = append(want, w.values["unicode"], w.values["quotes"], []byte("kept as is"))
	print := `for v in "$@"; do eval "printf '%s\0' \"\$$v\""; done`

	// --no-masking: the values as they are; op held while every argv is
	// scanned.
	out, errb, code := w.rsshRun(true, nil, append([]string{"secret", "run", "--env-file", env1, "--env-file=" + env2, "--no-masking", "--", "sh", "-c", print, "sh"}, vars...)...)
	if got := bytes.Split(bytes.TrimSuffix(out, []byte{0}), []byte{0}); code != 0 || !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("run --no-masking: exit %d, stderr %s\n got %q\nwant %q", code, errb, got, want)
	}
	if runs := w.fake.Runs(t); len(runs) != 1 {
		t.Errorf("op ran %d times for one run, want one batch: %+v", len(runs), runs)
	}

	// Masking: each value, whole, is concealed; the rest is untouched.
	out, errb, code = w.rsshRun(false, nil, append([]string{"secret", "run", "--env-file", env1, "--env-file", env2, "sh", "-c", `for v in "$@"; do eval "printf '<%s>\n' \"\$$v\""; eval "printf '[%s]' \"\$$v\"" >&2; done`, "sh"}, vars...)...)
	var wantOut, wantErr strings.Builder
	for _, v := range want {
		m := secret.Concealed
		if string(v) == "kept as is" {
			m = string(v)
		}
		fmt.Fprintf(&wantOut, "<%s>\n", m)
		fmt.Fprintf(&wantErr, "[%s]", m)
	}
	if code != 0 || string(out) != wantOut.String() || string(errb) != wantErr.String() {
		t.Errorf("run (masking): exit %d\nstdout %q\nwant   %q\nstderr %q\nwant   %q", code, out, wantOut.String(), errb, wantErr.String())
	}

	// While CMD runs (secrets in its environment): no argv holds one.
	ready, goOn := filepath.Join(w.dir, "ready"), filepath.Join(w.dir, "go")
	cmd, _, cerr := w.startRSSH(nil, "secret", "run", "--", "sh", "-c", `: > "$1"; while [ ! -e "$2" ]; do sleep 0.01; done`, "sh", ready, goOn)
	testenv.WaitFile(t, ready, 30*time.Second)
	pids := testenv.ScanCmdlines(t, w.secrets())
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("the scan did not see rssh (%d) running", cmd.Process.Pid)
	}
	os.WriteFile(goOn, nil, 0o600)
	if code := waitExit(t, cmd, 30*time.Second); code != 0 {
		t.Errorf("run: exit %d, %s", code, cerr)
	}

	// The token: not in CMD's environment; with --keep-token, there (and
	// masked like a secret).
	tokenLen := strconv.Itoa(len(w.fake.Token))
	check := `printf '%s|' "${OP_SERVICE_ACCOUNT_TOKEN-unset}"; printf %s "${OP_SERVICE_ACCOUNT_TOKEN-}" | wc -c | tr -d ' '`
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"secret", "run", "--", "sh", "-c", check}, "unset|0\n"},
		{[]string{"secret", "run", "--keep-token", "--", "sh", "-c", check}, secret.Concealed + "|" + tokenLen + "\n"},
		{[]string{"secret", "run", "--keep-token", "--no-masking", "--", "sh", "-c", check}, w.fake.Token + "|" + tokenLen + "\n"},
	} {
		out, errb, code := w.rsshRun(false, nil, c.args...)
		if code != 0 || string(out) != c.want {
			t.Errorf("%q: exit %d, stdout %q (want %q), stderr %s", c.args, code, out, c.want, errb)
		}
	}
	w.checkNoShell()
}

// Acceptance 2, run: CMD's exit status (128+n for a signal n) is rssh's,
// and SIGINT, SIGTERM and SIGHUP sent to rssh reach CMD, with and without
// masking.
func TestSecretRunExitStatusAndSignals(t *testing.T) {
	w := newSecretWorld(t)
	w.env = append(w.env, "S="+w.refs["unicode"])
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"sh", "-c", "exit 0"}, 0, ""},
		{[]string{"sh", "-c", "exit 1"}, 1, ""},
		{[]string{"sh", "-c", "exit 42"}, 42, ""},
		{[]string{"sh", "-c", "exit 255"}, 255, ""},
		{[]string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{[]string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{[]string{"sh", "-c", "kill -SEGV $$"}, 139, ""},
		{[]string{"no-such-command-here"}, 127, "rssh: secret run: exec: \"no-such-command-here\": executable file not found in $PATH\n"},
	} {
		for _, mask := range []bool{true, false} {
			args := []string{"secret", "run"}
			if !mask {
				args = append(args, "--no-masking")
			}
			out, errb, code := w.rsshRun(false, nil, append(append(args, "--"), c.args...)...)
			if code != c.code || len(out) != 0 || string(errb) != c.err {
				t.Errorf("%q (masking %v): exit %d, stdout %q, stderr %q; want %d, %q", c.args, mask, code, out, errb, c.code, c.err)
			}
		}
	}
	trap := `trap 'echo got; exit 3' INT TERM HUP; echo ready; while :; do sleep 0.01; done`
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		for _, mask := range []bool{true, false} {
			args := []string{"secret", "run"}
			if !mask {
				args = append(args, "--no-masking")
			}
			cmd, out, errb := w.startRSSH(nil, append(args, "sh", "-c", trap)...)
			if !out.WaitFor("ready\n", 30*time.Second) {
				t.Fatalf("CMD never ready: %q %q", out.String(), errb.String())
			}
			cmd.Process.Signal(sig)
			if code := waitExit(t, cmd, 30*time.Second); code != 3 || out.String() != "ready\ngot\n" {
				t.Errorf("%v (masking %v): exit %d, stdout %q, stderr %q", sig, mask, code, out.String(), errb.String())
			}
		}
	}

	// rssh's own failures: 255, CMD never runs.
	w.env = append(w.env, "BAD=op://SA - test/no such item/credential")
	ran := filepath.Join(w.dir, "ran")
	out, errb, code := w.rsshRun(false, nil, "secret", "run", "--", "touch", ran)
	if code != exitSecretFailed || len(out) != 0 || !strings.Contains(string(errb), `rssh: secret run: `) || !strings.Contains(string(errb), `"no such item" isn't an item`) {
		t.Errorf("unresolvable reference: exit %d, stderr %s", code, errb)
	}
	out, errb, code = w.rsshRun(false, nil, "secret", "run", "--env-file", filepath.Join(w.dir, "missing.env"), "--", "touch", ran)
	if code != exitSecretFailed || !strings.Contains(string(errb), "rssh: secret run: env file: open ") {
		t.Errorf("missing env file: exit %d, stderr %s", code, errb)
	}
	out, errb, code = w.rsshRun(false, nil, "secret", "run")
	if code != exitSecretFailed || !strings.Contains(string(errb), "rssh: secret run: no command to run\nrssh: hint: usage: rssh secret run") {
		t.Errorf("no command: exit %d, stderr %s", code, errb)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("CMD ran after rssh failed")
	}
}

// At a terminal (rssh in its foreground, as from an interactive shell):
// CMD's stdout is still a terminal with masking on, its output masked; a
// ^C typed reaches CMD once, from the terminal (which signals rssh and CMD
// alike, so rssh does not pass it on again), while a signal sent to rssh
// alone is passed on. CMD reads each signal's sender (si_pid: 0 for the
// terminal) with sigwaitinfo.
func TestSecretRunInteractiveTerminal(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	w := newSecretWorld(t)
	w.env = append(w.env, "S="+w.refs["unicode"], "TERM=dumb")
	script := `import os, signal, sys
sigs = {signal.SIGINT, signal.SIGUSR1}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
if os.isatty(1): print("stdout is a terminal")
print("secret: " + os.environ["S"])
print("ready", flush=True)
while True:
    i = signal.sigwaitinfo(sigs)
    print("signal %d from %d" % (i.si_signo, i.si_pid), flush=True)
    if i.si_signo == signal.SIGUSR1: break
`
	cmd := exec.Command(w.rssh, "secret", "run", "--", py, "-c", script)
	cmd.Env = w.env
	master, err := pty.Start(cmd) // a new session, the pty its controlling terminal
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	out := &testenv.Buffer{}
	go io.Copy(out, master)
	if !out.WaitFor("ready", 30*time.Second) {
		t.Fatalf("CMD never ready: %q", out.String())
	}
	if s := out.String(); !strings.Contains(s, "stdout is a terminal") || !strings.Contains(s, "secret: "+secret.Concealed+"\r\n") || strings.Contains(s, string(w.values["unicode"])) {
		t.Errorf("terminal shows %q", s)
	}
	master.Write([]byte{3}) // ^C
	if !out.WaitFor("signal 2 from 0", 30*time.Second) {
		t.Fatalf("^C did not reach CMD from the terminal: %q", out.String())
	}
	// Had rssh passed the ^C on too, CMD would see a second SIGINT, from
	// rssh, before this SIGUSR1 (rssh relays signals in order).
	cmd.Process.Signal(syscall.SIGUSR1)
	usr1 := fmt.Sprintf("signal %d from %d", syscall.SIGUSR1, cmd.Process.Pid)
	if !out.WaitFor(usr1, 30*time.Second) {
		t.Fatalf("SIGUSR1 did not reach CMD from rssh: %q", out.String())
	}
	if code := waitExit(t, cmd, 30*time.Second); code != 0 || strings.Count(out.String(), "signal ") != 2 {
		t.Errorf("exit %d; terminal shows %q", code, out.String())
	}
}
