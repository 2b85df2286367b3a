package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// shmDir is a fresh directory on tmpfs (/dev/shm on the test machines).
func shmDir(t *testing.T) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != 0x01021994 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("/dev/shm is not tmpfs: fetch needs a tmpfs to write to")
		}
		t.Skip("/dev/shm is not tmpfs")
	}
	d, err := os.MkdirTemp("/dev/shm", "rssh-fetch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// fetchArgs are NAME=REF for every tricky value, and what each NAME holds.
func (w *secretWorld) fetchArgs() ([]string, map[string][]byte) {
	var args []string
	want := map[string][]byte{}
	for _, n := range w.names {
		name := "SECRET_" + strings.ToUpper(n)
		args = append(args, name+"="+w.refs[n])
		want[name] = w.values[n]
	}
	return args, want
}

// readEnvFile reads FILE back as systemd's EnvironmentFile= does and as
// `sh -c '. FILE; printf %s "$NAME"'` does; both must give want exactly.
func readEnvFile(t *testing.T, file string, want map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sd := testenv.ParseSystemdEnvFile(data)
	if len(sd) != len(want) {
		t.Errorf("systemd reads %d variables, want %d", len(sd), len(want))
	}
	for name, v := range want {
		if sd[name] != string(v) {
			t.Errorf("systemd reads %s as %q, want %q", name, sd[name], v)
		}
		out, err := exec.Command("sh", "-c", `. "$1"; eval "printf %s \"\$$2\""`, "sh", file, name).Output()
		if err != nil || !bytes.Equal(out, v) {
			t.Errorf("sh reads %s as %q (%v), want %q", name, out, err, v)
		}
	}
}

// Acceptance 1 and 3, fetch: an EnvironmentFile on tmpfs that systemd and
// sh read back byte for byte, directory 0700 and file 0400 (or
// --file-mode), one op run, no value or token in any argv while op runs,
// no shell sees a value.
func TestSecretFetchFakeOp(t *testing.T) {
	w := newSecretWorld(t)
	shm := shmDir(t)
	out := filepath.Join(shm, "svc", "secrets.env")
	args, want := w.fetchArgs()
	stdout, errb, code := w.rsshRun(true, nil, append([]string{"secret", "fetch", "--out", out}, args...)...)
	if code != 0 || len(stdout) != 0 || len(errb) != 0 {
		t.Fatalf("fetch: exit %d, stdout %q, stderr %s", code, stdout, errb)
	}
	readEnvFile(t, out, want)
	for p, mode := range map[string]os.FileMode{filepath.Dir(out): 0o700, out: 0o400} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, %v; want %v", p, st.Mode().Perm(), err, mode)
		}
	}
	if runs := w.fake.Runs(t); len(runs) != 1 {
		t.Errorf("op ran %d times, want one batch", len(runs))
	}
	_, errb, code = w.rsshRun(false, nil, append([]string{"secret", "fetch", "--file-mode", "0440", "-o", out}, args[:2]...)...)
	if st, _ := os.Stat(out); code != 0 || st.Mode().Perm() != 0o440 {
		t.Errorf("--file-mode 0440: exit %d, %v, %s", code, st.Mode(), errb)
	}
	w.checkNoShell()
}

// Acceptance 3: op failing three times then answering → the file, once;
// op always failing → non-zero after N attempts with op's last error, the
// old file intact; a rate limit longer than --max-wait → no second ask.
func TestSecretFetchRetries(t *testing.T) {
	w := newSecretWorld(t)
	shm := shmDir(t)
	out := filepath.Join(shm, "env")
	args, want := w.fetchArgs()
	w.fake.FailNext(t, 3, "[ERROR] 2026/05/04 10:32:55 dial tcp: lookup my.1password.com: i/o timeout")
	_, errb, code := w.rsshRun(false, nil, append([]string{"secret", "fetch", "--out", out}, args...)...)
	if code != 0 {
		t.Fatalf("fetch: exit %d, %s", code, errb)
	}
	readEnvFile(t, out, want)
	if runs := w.fake.Runs(t); len(runs) != 4 {
		t.Errorf("op ran %d times, want 4", len(runs))
	}
	if n := strings.Count(string(errb), "rssh: secret fetch: attempt "); n != 3 || !strings.Contains(string(errb), "attempt 1 of 12 failed: ") {
		t.Errorf("stderr: %s", errb)
	}

	old, _ := os.ReadFile(out)
	before := len(w.fake.Runs(t))
	w.fake.FailNext(t, 100, "[ERROR] 2026/05/04 10:32:55 Get \"https://my.1password.com/api/v1/vaults\": connection reset by peer")
	_, errb, code = w.rsshRun(false, nil, append([]string{"secret", "fetch", "--attempts", "3", "--out", out}, args...)...)
	lines := strings.Split(strings.TrimSpace(string(errb)), "\n")
	last := lines[len(lines)-2]
	if code != exitSecretFailed || !strings.HasPrefix(last, "rssh: secret fetch: "+out+": after 3 attempts: ") || !strings.Contains(last, "connection reset by peer") {
		t.Errorf("always failing: exit %d, stderr %s", code, errb)
	}
	if n := len(w.fake.Runs(t)) - before; n != 3 {
		t.Errorf("op ran %d times, want 3", n)
	}
	if now, _ := os.ReadFile(out); !bytes.Equal(now, old) {
		t.Errorf("the old file changed")
	}
	if ents, _ := os.ReadDir(shm); len(ents) != 2 { // env and its lock
		t.Errorf("left in %s: %v", shm, ents)
	}

	before = len(w.fake.Runs(t))
	w.fake.FailNext(t, 1, "[ERROR] 2023/06/26 11:55:32 (429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in 58 minutes or try other requests.")
	_, errb, code = w.rsshRun(false, nil, append([]string{"secret", "fetch", "--out", out}, args...)...)
	if code != exitSecretFailed || !strings.Contains(string(errb), "1Password asks to wait 58m0s, more than --max-wait 15m0s") || !strings.Contains(string(errb), "rssh: hint: ") {
		t.Errorf("rate limited: exit %d, stderr %s", code, errb)
	}
	if n := len(w.fake.Runs(t)) - before; n != 1 {
		t.Errorf("rate limited: op asked %d times, want once", n)
	}
	w.fake.FailNext(t, 0, "")
}

// Acceptance 3: two fetches of one file run one after the other. The
// second is seen blocked on the first one's flock (/proc/locks) while the
// first one's op is held, and its op runs only after the first finished.
func TestSecretFetchSerialises(t *testing.T) {
	w := newSecretWorld(t)
	shm := shmDir(t)
	out := filepath.Join(shm, "env")
	args, want := w.fetchArgs()
	hold := w.fake.Hold(t)
	first, _, ferr := w.startRSSH(nil, append([]string{"secret", "fetch", "--out", out}, args...)...)
	hold.WaitStarted(t, 30*time.Second)
	second, _, serr := w.startRSSH(nil, append([]string{"secret", "fetch", "--out", out}, args...)...)
	// A blocked flock shows in /proc/locks as "N: -> FLOCK ADVISORY WRITE PID …".
	pid := strconv.Itoa(second.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		locks, _ := os.ReadFile("/proc/locks")
		blocked := false
		for _, l := range strings.Split(string(locks), "\n") {
			if f := strings.Fields(l); len(f) >= 6 && f[1] == "->" && f[2] == "FLOCK" && f[5] == pid {
				blocked = true
			}
		}
		if blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second fetch never waited on the lock; stderr %q", serr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if runs := w.fake.Runs(t); len(runs) != 1 {
		t.Errorf("op ran %d times while the first fetch held the lock", len(runs))
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the file exists before either fetch resolved")
	}
	hold.Release(t, true)
	if code := waitExit(t, first, 30*time.Second); code != 0 {
		t.Errorf("first: exit %d, %s", code, ferr)
	}
	if code := waitExit(t, second, 30*time.Second); code != 0 {
		t.Errorf("second: exit %d, %s", code, serr)
	}
	if !strings.Contains(serr.String(), "rssh: secret fetch: waiting for another fetch of "+out) {
		t.Errorf("second: stderr %q", serr.String())
	}
	if runs := w.fake.Runs(t); len(runs) != 2 {
		t.Errorf("op ran %d times, want 2", len(runs))
	}
	readEnvFile(t, out, want)
}

// Acceptance 3: a target not on tmpfs or ramfs is refused (nothing made,
// op never run) unless --allow-disk.
func TestSecretFetchRefusesDisk(t *testing.T) {
	w := newSecretWorld(t)
	var st syscall.Statfs_t
	if err := syscall.Statfs(w.dir, &st); err != nil || st.Type == 0x01021994 || st.Type == 0x858458f6 {
		t.Skipf("%s is on tmpfs or ramfs here", w.dir)
	}
	out := filepath.Join(w.dir, "run", "svc", "env")
	args, want := w.fetchArgs()
	_, errb, code := w.rsshRun(false, nil, append([]string{"secret", "fetch", "--out", out}, args...)...)
	wantErr := "rssh: secret fetch: " + out + ": " + filepath.Dir(out) + " is not on tmpfs or ramfs: secrets would be written to disk\nrssh: hint: "
	if code != exitSecretFailed || !strings.HasPrefix(string(errb), wantErr) || !strings.Contains(string(errb), "--allow-disk") {
		t.Errorf("disk: exit %d, stderr %q", code, errb)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "run")); err == nil || len(w.fake.Runs(t)) != 0 {
		t.Errorf("refused, yet a directory was made or op ran")
	}
	_, errb, code = w.rsshRun(false, nil, append([]string{"secret", "fetch", "--allow-disk", "--out", out}, args...)...)
	if code != 0 {
		t.Fatalf("--allow-disk: exit %d, %s", code, errb)
	}
	readEnvFile(t, out, want)

	// Usage mistakes: 255 and the synopsis, op never run.
	before := len(w.fake.Runs(t))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"A=op://v/i/f"}, "rssh: secret fetch: --out FILE is required\nrssh: hint: usage: rssh secret fetch"},
		{[]string{"--out", out}, "nothing to fetch"},
		{[]string{"--out", out, "A"}, `"A": want NAME=op://vault/item/field`},
		{[]string{"--out", out, "1A=op://v/i/f"}, `"1A" is not a variable name`},
		{[]string{"--out", out, "A=op://v/i"}, `invalid secret reference "op://v/i"`},
		{[]string{"--out", out, "--attempts", "0", "A=op://v/i/f"}, "--attempts 0: at least 1"},
	} {
		_, errb, code := w.rsshRun(false, nil, append([]string{"secret", "fetch"}, c.args...)...)
		if code != exitSecretFailed || !strings.Contains(string(errb), c.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", c.args, code, errb, c.want)
		}
	}
	if n := len(w.fake.Runs(t)) - before; n != 0 {
		t.Errorf("op ran %d times on usage mistakes", n)
	}
}

// A fetch stopped by a signal (systemd stopping the unit, a start
// timeout) ends op, leaves the old file as it was and no temporary file.
func TestSecretFetchStopped(t *testing.T) {
	w := newSecretWorld(t)
	shm := shmDir(t)
	out := filepath.Join(shm, "env")
	os.WriteFile(out, []byte("OLD=\"1\"\n"), 0o400)
	args, _ := w.fetchArgs()
	hold := w.fake.Hold(t)
	cmd, _, errb := w.startRSSH(nil, append([]string{"secret", "fetch", "--out", out}, args...)...)
	opPID := hold.WaitStarted(t, 30*time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd, 30*time.Second); code != exitSecretFailed || !strings.Contains(errb.String(), "rssh: secret fetch: "+out+": stopped by a signal; the file is as it was\n") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(opPID)); err == nil {
		t.Errorf("op (pid %d) outlived rssh", opPID)
	}
	// (op is gone: nothing to release at the gate.)
	if b, _ := os.ReadFile(out); string(b) != "OLD=\"1\"\n" {
		t.Errorf("the file is now %q", b)
	}
	if ents, _ := os.ReadDir(shm); len(ents) != 2 {
		t.Errorf("left in %s: %v", shm, ents)
	}
}
