package secret

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/rssh/rssh/internal/testenv"
)

func init() {
	// The tests signal their own process; whether it has a terminal in
	// the foreground depends on how `go test` was started.
	controllingTTY = func() *os.File { return nil }
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every op:// value, from the environment and from env files (the later
// file winning), is resolved in one ResolveAll and reaches CMD byte for
// byte; nothing in a value runs.
func TestRunResolvesInOneBatch(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "X")
	tricky := testenv.TrickyValues(mark)
	values := map[string][]byte{}
	var names []string
	for name, v := range tricky {
		values["op://vault/item/"+name] = v
		names = append(names, name)
	}
	sort.Strings(names)
	environ := []string{"PATH=" + os.Getenv("PATH"), "PLAIN=kept", "FROMFILE=op://vault/item/missing"}
	for _, n := range names {
		environ = append(environ, "E_"+n+"=op://vault/item/"+n)
	}
	f1 := writeFile(t, filepath.Join(dir, "one.env"), "FROMFILE=op://vault/item/unicode\nDUP=op://vault/item/subst\nLATER=op://vault/item/missing\nVAULT=vault\n")
	f2 := writeFile(t, filepath.Join(dir, "two.env"), "# the later file wins\nLATER=\"op://${VAULT}/item/quotes\"\n")
	fake := newFake(values)
	var out, errb bytes.Buffer
	script := `for v in "$@"; do eval "printf '%s\0' \"\$$v\""; done`
	args := []string{"sh", "-c", script, "sh", "PLAIN", "FROMFILE", "DUP", "LATER"}
	for _, n := range names {
		args = append(args, "E_"+n)
	}
	code, err := Run(context.Background(), RunConfig{
		Args: args, Environ: environ, EnvFiles: []string{f1, f2}, NoMasking: true,
		Backend: func() (Backend, error) { return fake, nil },
		Stdout:  &out, Stderr: &errb,
	})
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v; stderr %q", code, err, errb.String())
	}
	want := []string{"kept", string(tricky["unicode"]), string(tricky["subst"]), string(tricky["quotes"])}
	for _, n := range names {
		want = append(want, string(tricky[n]))
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00")
	if !slices.Equal(got, want) {
		t.Errorf("CMD saw\n%q\nwant\n%q", got, want)
	}
	calls := fake.Calls()
	if len(calls) != 1 {
		t.Fatalf("ResolveAll called %d times, want once: %q", len(calls), calls)
	}
	if len(calls[0]) != len(names) {
		t.Errorf("one batch of %d distinct references, want %d: %q", len(calls[0]), len(names), calls[0])
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("a value ran: X was created")
	}
}

func TestRunMasks(t *testing.T) {
	secretA := []byte("s3cr3t-$(touch X)-`x`-'\"-%s-ünï")
	multi := []byte("-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQAB\n-----END KEY-----")
	fake := newFake(map[string][]byte{"op://v/i/a": secretA, "op://v/i/m": multi})
	// A printed whole, then split over two writes with a pause (shorter
	// than the idle flush) between them, on stdout and on stderr; the
	// multi-line value whole and line by line with a prefix.
	script := `printf 'a=%s.\n' "$A"
printf %s "$A" | head -c 7; sleep 0.05; printf %s "$A" | tail -c +8; echo
printf %s "$A" | head -c 3 >&2; sleep 0.05; printf '%s|\n' "$A" | tail -c +4 >&2
printf '%s\n' "$M"
printf '%s\n' "$M" | sed 's/^/log: /'
echo plain`
	run := func(noMask bool) (string, string) {
		var out, errb bytes.Buffer
		code, err := Run(context.Background(), RunConfig{
			Args:    []string{"sh", "-c", script},
			Environ: []string{"PATH=" + os.Getenv("PATH"), "A=op://v/i/a", "M=op://v/i/m"},
			Backend: func() (Backend, error) { return fake, nil }, NoMasking: noMask,
			Stdout: &out, Stderr: &errb,
		})
		if err != nil || code != 0 {
			t.Fatalf("Run = %d, %v", code, err)
		}
		return out.String(), errb.String()
	}
	c := Concealed
	out, errs := run(false)
	wantOut := "a=" + c + ".\n" + c + "\n" + c + "\n" + "log: " + c + "\nlog: " + c + "\nlog: " + c + "\nplain\n"
	if out != wantOut || errs != c+"|\n" {
		t.Errorf("masked stdout %q stderr %q\nwant stdout %q stderr %q", out, errs, wantOut, c+"|\n")
	}
	out, errs = run(true)
	wantOut = "a=" + string(secretA) + ".\n" + string(secretA) + "\n" + string(multi) + "\n"
	if !strings.HasPrefix(out, wantOut) || errs != string(secretA)+"|\n" {
		t.Errorf("--no-masking stdout %q stderr %q", out, errs)
	}
}

// Output that could be the start of a secret is held only while more may
// follow: a prompt ending in one goes out after the idle time.
func TestRunMaskDoesNotHoldForever(t *testing.T) {
	fake := newFake(map[string][]byte{"op://v/i/a": []byte("password123")})
	out := &testenv.Buffer{}
	done := make(chan int)
	go func() {
		code, _ := Run(context.Background(), RunConfig{
			Args:    []string{"sh", "-c", `printf 'Enter pass'; read x; echo "$x"`},
			Environ: []string{"PATH=" + os.Getenv("PATH"), "A=op://v/i/a"},
			Backend: func() (Backend, error) { return fake, nil },
			Stdin:   strings.NewReader("password123\n"), Stdout: out, Stderr: out,
		})
		done <- code
	}()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got, want := out.String(), "Enter pass"+Concealed+"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	// The prompt alone, with the child still running, is released.
	r, w, _ := os.Pipe()
	defer w.Close()
	out = &testenv.Buffer{}
	go func() {
		code, _ := Run(context.Background(), RunConfig{
			Args:    []string{"sh", "-c", `printf 'Enter pass'; read x`},
			Environ: []string{"PATH=" + os.Getenv("PATH"), "A=op://v/i/a"},
			Backend: func() (Backend, error) { return fake, nil },
			Stdin:   r, Stdout: out, Stderr: out,
		})
		done <- code
	}()
	if !out.WaitFor("Enter pass", 10*time.Second) {
		t.Errorf("the prompt was held: %q", out.String())
	}
	w.Close()
	<-done
}

func TestRunWithoutReferencesNeedsNoBackend(t *testing.T) {
	var out bytes.Buffer
	code, err := Run(context.Background(), RunConfig{
		Args:    []string{"sh", "-c", "printf %s \"$A\""},
		Environ: []string{"PATH=" + os.Getenv("PATH"), "A=plain"},
		Backend: func() (Backend, error) { return nil, errors.New("no token") },
		Stdout:  &out,
	})
	if err != nil || code != 0 || out.String() != "plain" {
		t.Errorf("Run = %d, %v, %q", code, err, out.String())
	}
	_, err = Run(context.Background(), RunConfig{
		Args:    []string{"true"},
		Environ: []string{"A=op://v/i/a"},
		Backend: func() (Backend, error) { return nil, errors.New("no token") },
	})
	if err == nil || err.Error() != "no token" {
		t.Errorf("with a reference and no backend: %v", err)
	}
}

// The token is dropped from CMD's environment unless it is set back.
func TestRunDropsToken(t *testing.T) {
	environ := []string{"PATH=" + os.Getenv("PATH"), "OP_SERVICE_ACCOUNT_TOKEN=ops_abc", "A=1"}
	var out bytes.Buffer
	code, _ := Run(context.Background(), RunConfig{
		Args: []string{"sh", "-c", `printf '%s' "${OP_SERVICE_ACCOUNT_TOKEN-unset}"`}, Environ: environ,
		Drop: []string{TokenEnv}, Stdout: &out,
	})
	if code != 0 || out.String() != "unset" {
		t.Errorf("token dropped: %d %q", code, out.String())
	}
	out.Reset()
	Run(context.Background(), RunConfig{
		Args: []string{"sh", "-c", `printf '%s' "${OP_SERVICE_ACCOUNT_TOKEN-unset}"`}, Environ: environ,
		Drop: []string{TokenEnv}, Set: []EnvVar{{TokenEnv, "ops_file"}}, Stdout: &out,
	})
	if out.String() != "ops_file" {
		t.Errorf("token kept: %q", out.String())
	}
}

func TestExecExitStatus(t *testing.T) {
	dir := t.TempDir()
	noexec := writeFile(t, filepath.Join(dir, "noexec"), "#!/bin/sh\n")
	for _, tc := range []struct {
		args []string
		code int
		err  bool
	}{
		{[]string{"sh", "-c", "exit 0"}, 0, false},
		{[]string{"sh", "-c", "exit 7"}, 7, false},
		{[]string{"sh", "-c", "exit 255"}, 255, false},
		{[]string{"sh", "-c", "kill -TERM $$"}, 128 + 15, false},
		{[]string{"sh", "-c", "kill -KILL $$"}, 128 + 9, false},
		{[]string{"sh", "-c", "kill -INT $$"}, 128 + 2, false},
		{[]string{"no-such-command-rssh"}, 127, true},
		{[]string{noexec}, 126, true},
	} {
		for _, mask := range [][][]byte{nil, {[]byte("secret")}} {
			code, err := Exec(ExecConfig{Args: tc.args, Env: []string{"PATH=" + os.Getenv("PATH")}, Stdout: &bytes.Buffer{}, Mask: mask})
			if code != tc.code || (err != nil) != tc.err {
				t.Errorf("%q (masking %v): %d, %v; want %d", tc.args, mask != nil, code, err, tc.code)
			}
		}
	}
}

// SIGINT, SIGTERM and SIGHUP sent to rssh reach CMD, which decides what
// they mean (here: print and exit 3).
func TestExecForwardsSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		for _, mask := range [][][]byte{nil, {[]byte("secret")}} {
			out := &testenv.Buffer{}
			done := make(chan int)
			go func() {
				code, _ := Exec(ExecConfig{
					Args:   []string{"sh", "-c", `trap 'echo got; exit 3' INT TERM HUP; echo ready; while :; do sleep 0.01; done`},
					Env:    []string{"PATH=" + os.Getenv("PATH")},
					Stdout: out, Mask: mask,
				})
				done <- code
			}()
			if !out.WaitFor("ready\n", 10*time.Second) {
				t.Fatalf("child never ready: %q", out.String())
			}
			syscall.Kill(os.Getpid(), sig)
			select {
			case code := <-done:
				if code != 3 || out.String() != "ready\ngot\n" {
					t.Errorf("%v (masking %v): exit %d, output %q", sig, mask != nil, code, out.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%v did not reach the child", sig)
			}
		}
	}
}

// With rssh's stdout a terminal, CMD's stdout is a terminal too (a pty
// rssh masks), so programs keep their colours and line buffering.
func TestExecMasksThroughATerminal(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	pty.Setsize(slave, &pty.Winsize{Rows: 33, Cols: 101})
	code, err := Exec(ExecConfig{
		Args:   []string{"sh", "-c", `test -t 1 && echo tty; stty size <&1; printf '%s\n' "$S"`},
		Env:    []string{"PATH=" + os.Getenv("PATH"), "S=multi\nline-secret"},
		Stdout: slave, Stderr: &bytes.Buffer{},
		Mask: [][]byte{[]byte("multi\nline-secret")},
	})
	slave.Close()
	if err != nil || code != 0 {
		t.Fatalf("Exec = %d, %v", code, err)
	}
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		master.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := master.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if want := "tty\r\n33 101\r\n" + Concealed + "\r\n"; got.String() != want {
		t.Errorf("terminal shows %q, want %q", got.String(), want)
	}
}

// A process CMD leaves behind holding its stdout does not keep rssh:
// output is relayed for waitDelay after CMD exits, then rssh returns.
func TestExecDoesNotWaitForLeftBehindProcesses(t *testing.T) {
	defer func(d time.Duration) { waitDelay = d }(waitDelay)
	waitDelay = 100 * time.Millisecond
	dir := t.TempDir()
	goOn := filepath.Join(dir, "go")
	defer os.WriteFile(goOn, nil, 0o600)
	out := &testenv.Buffer{}
	done := make(chan int, 1)
	go func() {
		code, _ := Exec(ExecConfig{
			Args:   []string{"sh", "-c", `(while [ ! -e "$1" ]; do sleep 0.01; done; echo late) & echo early; exit 4`, "sh", goOn},
			Env:    []string{"PATH=" + os.Getenv("PATH")},
			Stdout: out, Mask: [][]byte{[]byte("secret")},
		})
		done <- code
	}()
	select {
	case code := <-done:
		if code != 4 || out.String() != "early\n" {
			t.Errorf("exit %d, output %q", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("rssh waited for the process CMD left behind")
	}
}
