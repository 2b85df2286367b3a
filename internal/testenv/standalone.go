package testenv

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// Standalone is a TB for programs outside `go test` (the benchmarks): a
// fatal error runs the cleanups and exits 1.
type Standalone struct {
	Name     string // prefix for messages
	cleanups []func()
	failed   bool
}

var _ TB = (*Standalone)(nil)

func (s *Standalone) Helper() {}

func (s *Standalone) Fatalf(format string, args ...any) {
	s.failed = true
	s.Close()
	fmt.Fprintf(os.Stderr, s.Name+": "+format+"\n", args...)
	os.Exit(1)
}

func (s *Standalone) Errorf(format string, args ...any) {
	s.failed = true
	fmt.Fprintf(os.Stderr, s.Name+": "+format+"\n", args...)
}

func (s *Standalone) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// Skipf is fatal: a benchmark that cannot run has no figures to give.
func (s *Standalone) Skipf(format string, args ...any) { s.Fatalf(format, args...) }

func (s *Standalone) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }
func (s *Standalone) Failed() bool     { return s.failed }

func (s *Standalone) TempDir() string {
	d, err := os.MkdirTemp("", "rssh-"+s.Name+"-")
	if err != nil {
		s.Fatalf("%v", err)
	}
	s.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Close runs the cleanups, last first.
func (s *Standalone) Close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

// RunStandalone is a benchmark program's main: run gets a Standalone named
// name, and an error from it is printed and exits 1 after the cleanups.
func RunStandalone(name string, run func(tb *Standalone) error) {
	tb := &Standalone{Name: name}
	defer tb.Close()
	if err := run(tb); err != nil {
		tb.Close()
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// BuildRSSH builds the rssh command from this module into dir and returns
// its path; errors carry the compiler's output.
func BuildRSSH(dir string) (string, error) {
	bin := filepath.Join(dir, "rssh")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/rssh/rssh/cmd/rssh").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building rssh: %w\n%s", err, out)
	}
	return bin, nil
}

// Median is the middle value of xs (the upper one of an even count).
func Median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
