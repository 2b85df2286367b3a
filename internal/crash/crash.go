// Package crash puts back what must not outlive rssh when a panic on some
// goroutine ends the process: above all a terminal left in raw mode. Go runs
// the panicking goroutine's defers only, so the session's own deferred
// Restore never runs when a forwarding or stdin goroutine panics.
package crash

import "sync"

var (
	mu    sync.Mutex
	hooks = map[*func()]struct{}{}
)

// OnPanic registers f to run before a panic in a goroutine started with Go
// ends the process. The returned function unregisters it.
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

// Go runs f on a new goroutine; should f panic, the OnPanic hooks run and
// then the panic goes on, with its stack, to end the process as before.
func Go(f func()) {
	go func() {
		defer Repanic()
		f()
	}()
}

// Repanic, deferred first thing in a goroutine, runs the hooks on a panic
// and panics again with the same value. The panicking frames are still on
// the stack then, so the trace Go prints shows where it started.
func Repanic() {
	r := recover()
	if r == nil {
		return
	}
	mu.Lock()
	fs := make([]func(), 0, len(hooks))
	for p := range hooks {
		fs = append(fs, *p)
	}
	mu.Unlock()
	for _, f := range fs {
		func() {
			defer func() { recover() }() // a failing hook must not hide the panic
			f()
		}()
	}
	panic(r)
}
