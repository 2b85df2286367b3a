package main

import (
	"fmt"
	"os"
)

// benchTB lets the test harness run outside `go test`.
type benchTB struct {
	cleanups []func()
	failed   bool
}

func (b *benchTB) Helper() {}
func (b *benchTB) Fatalf(format string, args ...any) {
	b.failed = true
	b.cleanup()
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}
func (b *benchTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (b *benchTB) Skipf(format string, args ...any) {
	b.Fatalf(format, args...)
}
func (b *benchTB) Cleanup(f func()) { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) Failed() bool     { return b.failed }
func (b *benchTB) TempDir() string {
	d, err := os.MkdirTemp("", "rssh-bench-")
	if err != nil {
		b.Fatalf("%v", err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (b *benchTB) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}
