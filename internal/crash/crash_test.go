package crash

import "testing"

// Repanic runs the registered hooks, not the removed ones, and panics again
// with the same value; a hook that panics itself does not hide it.
func TestRepanicRunsHooks(t *testing.T) {
	var ran []string
	remove := OnPanic(func() { ran = append(ran, "removed") })
	remove()
	defer OnPanic(func() { ran = append(ran, "restore") })()
	defer OnPanic(func() { panic("a hook failing") })()

	got := func() (r any) {
		defer func() { r = recover() }()
		func() {
			defer Repanic()
			panic("the original")
		}()
		return nil
	}()
	if got != "the original" {
		t.Fatalf("recovered %v, want the original panic value", got)
	}
	if len(ran) != 1 || ran[0] != "restore" {
		t.Fatalf("hooks run: %v, want only the registered one", ran)
	}
}

// Without a panic, Repanic does nothing and runs no hook.
func TestRepanicQuietWithoutPanic(t *testing.T) {
	ran := false
	defer OnPanic(func() { ran = true })()
	func() { defer Repanic() }()
	if ran {
		t.Fatal("a hook ran without a panic")
	}
}
