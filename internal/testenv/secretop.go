package testenv

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FakeSecretOp is the 1Password CLI for the `rssh secret` tests: the
// program in internal/testenv/fakesecretop, built as Dir/op, answering
// `op read [--no-newline] REF` and `op inject` from a table of values, and
// only when OP_SERVICE_ACCOUNT_TOKEN is Token. Put Dir first on PATH (or
// pass Path as the op binary).
type FakeSecretOp struct {
	Dir, Path string
	Token     string
	Values    map[string][]byte // ref → value
	Errors    map[string]string // ref → what op prints on stderr for it
	mu        sync.Mutex
}

// NewFakeSecretOp makes a fake op in a fresh Dir (a symlink to the built
// program) with its table. values may be nil.
func NewFakeSecretOp(t TB, values map[string][]byte) *FakeSecretOp {
	t.Helper()
	b := make([]byte, 24)
	rand.Read(b)
	if values == nil {
		values = map[string][]byte{}
	}
	f := &FakeSecretOp{Dir: t.TempDir(), Token: "ops_fake" + hex.EncodeToString(b), Values: values, Errors: map[string]string{}}
	f.Path = filepath.Join(f.Dir, "op")
	bin, err := fakeSecretOpBinary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.Symlink(bin, f.Path); err != nil {
		t.Fatalf("%v", err)
	}
	f.writeTable(t)
	return f
}

func (f *FakeSecretOp) writeTable(t TB) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"token": f.Token, "values": f.Values, "errors": f.Errors})
	if err != nil {
		t.Fatalf("%v", err)
	}
	tmp := filepath.Join(f.Dir, "table.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.Rename(tmp, filepath.Join(f.Dir, "table.json")); err != nil {
		t.Fatalf("%v", err)
	}
}

// Set changes (or adds) a reference's value.
func (f *FakeSecretOp) Set(t TB, ref string, value []byte) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Values[ref] = value
	delete(f.Errors, ref)
	f.writeTable(t)
}

// SetError makes op fail on ref, printing msg (after op's "[ERROR] date "
// stamp) on stderr.
func (f *FakeSecretOp) SetError(t TB, ref, msg string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Errors[ref] = msg
	f.writeTable(t)
}

// FailNext makes the next n runs fail with msg on stderr, whatever they ask.
func (f *FakeSecretOp) FailNext(t TB, n int, msg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.Dir, "failmsg"), []byte(msg+"\n"), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(filepath.Join(f.Dir, "fail"), []byte(strconv.Itoa(n)+"\n"), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
}

// Env is environ with PATH starting at the fake's directory.
func (f *FakeSecretOp) Env(environ []string) []string {
	var out []string
	path := "/usr/bin:/bin"
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		out = append(out, kv)
	}
	return append(out, "PATH="+f.Dir+":"+path)
}

// OpRun is one run of the fake op.
type OpRun struct {
	Argv    []string `json:"argv"`
	PID     int      `json:"pid"`
	TokenOK bool     `json:"token_ok"`
	Connect bool     `json:"connect"`
}

// Runs returns every run so far.
func (f *FakeSecretOp) Runs(t TB) []OpRun {
	t.Helper()
	file, err := os.Open(filepath.Join(f.Dir, "argv.log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer file.Close()
	var runs []OpRun
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r OpRun
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("fake op log: %v", err)
		}
		runs = append(runs, r)
	}
	return runs
}

// CheckRuns fails the test if any run lacked the token, saw Connect's
// token, or had the token or a value in its argv.
func (f *FakeSecretOp) CheckRuns(t TB) {
	t.Helper()
	for _, r := range f.Runs(t) {
		if !r.TokenOK {
			t.Errorf("op ran without the right OP_SERVICE_ACCOUNT_TOKEN: %q", r.Argv)
		}
		if r.Connect {
			t.Errorf("op ran with OP_CONNECT_TOKEN in its environment: %q", r.Argv)
		}
		argv := strings.Join(r.Argv, "\x00")
		if strings.Contains(argv, f.Token) {
			t.Errorf("the token is in op's argv")
		}
		for ref, v := range f.Values {
			if len(v) >= 4 && strings.Contains(argv, string(v)) {
				t.Errorf("the value of %s is in op's argv", ref)
			}
		}
	}
}

// Hold is a gate every op run stops at until the test releases it.
type Hold struct {
	f                 *FakeSecretOp
	started, released string
}

// Hold makes the next op runs block after they start, so the test can look
// at the processes while they run.
func (f *FakeSecretOp) Hold(t TB) *Hold {
	t.Helper()
	h := &Hold{f: f, started: filepath.Join(f.Dir, "started"), released: filepath.Join(f.Dir, "release")}
	for _, p := range []string{h.started, h.released} {
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatalf("mkfifo: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.Dir, "hold"), nil, 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		// A test that failed before releasing a run must not leave it
		// blocked: meet its open of either FIFO, then close (EOF).
		os.Remove(filepath.Join(f.Dir, "hold"))
		if r, err := os.OpenFile(h.started, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			r.Close()
		}
		if w, err := os.OpenFile(h.released, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	return h
}

// WaitStarted waits until a run reaches the gate and returns its pid.
func (h *Hold) WaitStarted(t TB, d time.Duration) int {
	t.Helper()
	type res struct {
		pid int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// Opening a FIFO for reading blocks until the writer (the run) opens it.
		b, err := os.ReadFile(h.started)
		if err != nil {
			ch <- res{0, err}
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		ch <- res{pid, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("fake op gate: %v", r.err)
		}
		return r.pid
	case <-time.After(d):
		// Unblock the reader so its goroutine ends.
		if w, err := os.OpenFile(h.started, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatalf("no op run reached the gate within %v", d)
		return 0
	}
}

// Release lets the held run go on; with last, later runs are not held.
func (h *Hold) Release(t TB, last bool) {
	t.Helper()
	// The run is blocked opening the FIFO for reading: this open meets it.
	w, err := os.OpenFile(h.released, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("fake op gate: %v", err)
	}
	if last {
		os.Remove(filepath.Join(h.f.Dir, "hold"))
	}
	w.Close()
}

// ScanCmdlines reads every process's argv (/proc/*/cmdline) and fails the
// test if any holds one of secrets (name → value), whole or, for a value of
// several lines, any line of 6 bytes or more. It returns the pids scanned.
func ScanCmdlines(t TB, secrets map[string][]byte) []int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatalf("%v", err)
	}
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		pids = append(pids, pid)
		for name, v := range secrets {
			needles := [][]byte{v}
			if lines := bytes.Split(v, []byte("\n")); len(lines) > 1 {
				for _, l := range lines {
					if len(l) >= 6 {
						needles = append(needles, l)
					}
				}
			}
			for _, n := range needles {
				if len(n) > 0 && bytes.Contains(b, n) {
					t.Errorf("%s is in the argv of pid %d: %q", name, pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
					break
				}
			}
		}
	}
	if len(pids) == 0 {
		t.Fatalf("no process found in /proc")
	}
	return pids
}

// TrickyValues are secret values a shell would act on, each unique to this
// call: $(touch MARK), backticks running touch MARK, quotes, %, newlines,
// non-ASCII, a trailing newline. If MARK ever exists, a shell saw a value.
func TrickyValues(mark string) map[string][]byte {
	b := make([]byte, 6)
	rand.Read(b)
	s := hex.EncodeToString(b)
	return map[string][]byte{
		"subst":    []byte("a$(touch " + mark + ")b-" + s),
		"backtick": []byte("`touch " + mark + "`-" + s),
		"quotes":   []byte(`it's "quoted" \'` + s + `\' ; touch ` + mark),
		"percent":  []byte("100%s %d %%" + s + " ${HOME} $HOME"),
		"newlines": []byte("line one " + s + "\nline two $(touch " + mark + ")\n\nlast line"),
		"unicode":  []byte("pâsswörd-密码-🔑-" + s),
		"trailing": []byte("ends with a newline " + s + "\n"),
	}
}

// String makes the fake show up readably in failures.
func (f *FakeSecretOp) String() string { return fmt.Sprintf("fake op in %s", f.Dir) }

var (
	fakeOpOnce sync.Once
	fakeOpBin  string
	fakeOpErr  error
)

// fakeSecretOpBinary builds the fake once per source version: the binary
// is kept in the system temp dir under a name made of its source's hash,
// shared by test processes (a build lands by rename, so concurrent
// builders cannot tear it).
func fakeSecretOpBinary() (string, error) {
	fakeOpOnce.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		src, err := os.ReadFile(filepath.Join(filepath.Dir(here), "fakesecretop", "main.go"))
		if err != nil {
			fakeOpErr = fmt.Errorf("fake op source: %w", err)
			return
		}
		sum := sha256.Sum256(append(src, runtime.Version()...))
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("rssh-fakesecretop-%d", os.Getuid()))
		fakeOpBin = filepath.Join(dir, "op-"+hex.EncodeToString(sum[:8]))
		if _, err := os.Stat(fakeOpBin); err == nil {
			return
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fakeOpErr = err
			return
		}
		tmp := fmt.Sprintf("%s.%d", fakeOpBin, os.Getpid())
		if out, err := exec.Command("go", "build", "-o", tmp, "github.com/rssh/rssh/internal/testenv/fakesecretop").CombinedOutput(); err != nil {
			fakeOpErr = fmt.Errorf("building the fake op: %w\n%s", err, out)
			return
		}
		fakeOpErr = os.Rename(tmp, fakeOpBin)
	})
	return fakeOpBin, fakeOpErr
}
