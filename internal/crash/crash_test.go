package crash

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// fake replaces the process-ending parts for one test and returns what was
// printed and the exit status (-1 until exit is called).
func fake(t *testing.T, env map[string]string) (*bytes.Buffer, *int) {
	var out bytes.Buffer
	code := -1
	dying = sync.Mutex{}
	exit, stderr, getenv = func(c int) { code = c }, &out, func(k string) string { return env[k] }
	t.Cleanup(func() {
		exit, stderr, getenv = os.Exit, os.Stderr, os.Getenv
		dying = sync.Mutex{}
	})
	return &out, &code
}

var lineRE = regexp.MustCompile(`^rssh: internal error: (.*) \(stack in (.*)\)\n$`)

// A panic under Recover runs the registered hooks (not the removed ones,
// and a failing hook does not stop it), prints one line naming the panic
// and the stack file, and exits 255. The file, 0600 under
// $XDG_STATE_HOME/rssh, holds the panicking frames.
func TestRecoverReportsAndExits(t *testing.T) {
	state := t.TempDir()
	out, code := fake(t, map[string]string{"XDG_STATE_HOME": state})
	var ran []string
	remove := OnPanic(func() { ran = append(ran, "removed") })
	remove()
	defer OnPanic(func() { ran = append(ran, "restore") })()
	defer OnPanic(func() { panic("a hook failing") })()

	func() {
		defer Recover()
		panicsHere()
	}()
	if *code != 255 {
		t.Fatalf("exit status %d, want 255", *code)
	}
	if len(ran) != 1 || ran[0] != "restore" {
		t.Fatalf("hooks run: %v, want only the registered one", ran)
	}
	m := lineRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("stderr is not one internal-error line: %q", out.String())
	}
	if m[1] != "the original\tvalue on two lines" && m[1] != "the original value on two lines" {
		t.Errorf("panic value shown as %q", m[1])
	}
	if filepath.Dir(m[2]) != filepath.Join(state, "rssh") {
		t.Errorf("stack file %s is not under $XDG_STATE_HOME/rssh", m[2])
	}
	fi, err := os.Stat(m[2])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("stack file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(m[2])
	if !strings.Contains(string(b), "panicsHere") || !strings.Contains(string(b), "crash_test.go") {
		t.Errorf("stack file lacks the panicking frame:\n%s", b)
	}
}

func panicsHere() { panic("the original\nvalue on two lines") }

// Without XDG_STATE_HOME the file goes to ~/.local/state/rssh; when that
// cannot be made, to the temporary directory.
func TestStackFileFallbacks(t *testing.T) {
	home := t.TempDir()
	out, _ := fake(t, map[string]string{"HOME": home})
	func() { defer Recover(); panic("x") }()
	if m := lineRE.FindStringSubmatch(out.String()); m == nil || filepath.Dir(m[2]) != filepath.Join(home, ".local", "state", "rssh") {
		t.Fatalf("want a file under ~/.local/state/rssh: %q", out.String())
	}

	blocked := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocked, nil, 0o600)
	out, _ = fake(t, map[string]string{"XDG_STATE_HOME": blocked}) // a file, not a dir
	func() { defer Recover(); panic("y") }()
	m := lineRE.FindStringSubmatch(out.String())
	if m == nil || filepath.Dir(m[2]) != filepath.Clean(os.TempDir()) {
		t.Fatalf("want a file in %s: %q", os.TempDir(), out.String())
	}
	os.Remove(m[2])
}

// Without a panic, Recover does nothing and runs no hook.
func TestRecoverQuietWithoutPanic(t *testing.T) {
	_, code := fake(t, nil)
	ran := false
	defer OnPanic(func() { ran = true })()
	func() { defer Recover() }()
	if ran || *code != -1 {
		t.Fatal("a hook ran, or exit was called, without a panic")
	}
}
