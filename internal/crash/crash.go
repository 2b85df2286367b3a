// Package crash ends rssh cleanly when a goroutine panics: what must not
// outlive rssh is put back first (above all a terminal left in raw mode: Go
// runs the panicking goroutine's defers only, so the session's own deferred
// Restore never runs when a forwarding or stdin goroutine panics), the stack
// goes to a file of its own, and one line says so:
//
//	rssh: internal error: runtime error: index out of range [0] with length 0 (stack in /home/u/.local/state/rssh/crash-20261202T124733-4242.txt)
//
// after which the process exits 255, as for any failure of rssh's. Every
// goroutine rssh starts runs under Go, and every callback x/crypto runs on
// goroutines of its own (host key, banner, authentication, channel and
// request handlers) defers Recover.
package crash

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// ExitStatus is what a process ended by a panic exits with: ssh's 255.
const ExitStatus = 255

var (
	mu    sync.Mutex
	hooks = map[*func()]struct{}{}

	dying sync.Mutex // held for good by the first panic to be handled

	// Test seams.
	exit             = os.Exit
	stderr io.Writer = os.Stderr
	getenv           = os.Getenv
	now              = time.Now
)

// OnPanic registers f to run before a panic handled by Go or Recover ends
// the process. The returned function unregisters it.
func OnPanic(f func()) (remove func()) {
	p := &f
	mu.Lock()
	hooks[p] = struct{}{}
	mu.Unlock()
	return func() {
		mu.Lock()
		delete(hooks, p)
		mu.Unlock()
	}
}

// Go runs f on a new goroutine under Recover.
func Go(f func()) {
	go func() {
		defer Recover()
		f()
	}()
}

// Recover, deferred first thing in a goroutine or in a callback that
// another package runs on its own goroutines, turns a panic into rssh's
// internal error: the OnPanic hooks run, the stack is written to a file,
// one "rssh: internal error: …" line names the panic and that file, and the
// process exits 255. Without a panic it does nothing. The panicking frames
// are still on the stack when it runs, so the file shows where it started.
func Recover() {
	r := recover()
	if r == nil {
		return
	}
	die(r, debug.Stack())
}

func die(r any, stack []byte) {
	// A second panic, on another goroutine, waits here for the first to
	// end the process.
	dying.Lock()
	mu.Lock()
	fs := make([]func(), 0, len(hooks))
	for p := range hooks {
		fs = append(fs, *p)
	}
	mu.Unlock()
	for _, f := range fs {
		func() {
			defer func() { recover() }() // a failing hook must not stop the exit
			f()
		}()
	}
	what := describe(r)
	path, err := writeStack(what, stack)
	where := "stack in " + path
	if err != nil {
		where = "stack not saved: " + err.Error()
	}
	fmt.Fprintf(stderr, "rssh: internal error: %s (%s)\n", what, where)
	exit(ExitStatus)
}

// describe is the panic value on one line. Values that print themselves
// (errors, Stringers, rssh's redacting token type) are asked to; fmt
// catches a String method that panics in turn.
func describe(r any) string {
	s := fmt.Sprint(r)
	s = strings.Join(strings.Fields(s), " ")
	const max = 300
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// Dir is where crash files go: $XDG_STATE_HOME/rssh, else
// ~/.local/state/rssh (the XDG default), made 0700.
func Dir() string {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "rssh")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "rssh")
	}
	return ""
}

// writeStack writes the report to a new 0600 file in Dir, or in
// os.TempDir when Dir cannot be made or written. The report holds the panic
// line, the Go version, the time and the goroutine's stack: function names,
// files, lines and argument words, never the contents of memory (so never a
// token), nor argv or the environment.
func writeStack(what string, stack []byte) (string, error) {
	t := now()
	report := fmt.Sprintf("rssh internal error at %s\n%s %s/%s pid %d\n\npanic: %s\n\n%s",
		t.UTC().Format(time.RFC3339), runtime.Version(), runtime.GOOS, runtime.GOARCH, os.Getpid(), what, stack)
	pattern := fmt.Sprintf("crash-%s-%d-*.txt", t.UTC().Format("20060102T150405"), os.Getpid())
	var firstErr error
	for _, dir := range []string{Dir(), os.TempDir()} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		f, err := os.CreateTemp(dir, pattern) // mode 0600
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		_, werr := io.WriteString(f, report)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(f.Name())
			firstErr = cmpErr(firstErr, werr)
			continue
		}
		return f.Name(), nil
	}
	return "", firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
