//go:build linux

package sshproxy

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/internal/crash"
)

// panicChild is the child process of TestPanicRestoresTerminal: it puts its
// stdin terminal in raw mode, as a PTY session does, and then a goroutine
// panics. RSSH_PANIC_CHILD says how that goroutine was started.
func panicChild() {
	t := OpenTerminal(os.Stdin)
	t.MakeRaw()
	defer t.Restore() // the session's own defer: never runs, as in a real crash
	boom := func() { panic("forwarding goroutine failed") }
	if os.Getenv("RSSH_PANIC_CHILD") == "plain" {
		go boom()
	} else {
		crash.Go(boom)
	}
	time.Sleep(10 * time.Second)
	os.Exit(0)
}

func TestMain(m *testing.M) {
	if os.Getenv("RSSH_PANIC_CHILD") != "" {
		panicChild()
	}
	os.Exit(m.Run())
}

// A panic on a goroutine started with crash.Go leaves the terminal in the
// modes it had, and still ends the process with Go's panic trace; one on a
// plain goroutine (the control) leaves it raw, which is what the hook is for.
func TestPanicRestoresTerminal(t *testing.T) {
	for _, mode := range []string{"crash.Go", "plain"} {
		t.Run(mode, func(t *testing.T) {
			master, slave, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer master.Close()
			defer slave.Close()
			go func() { // drain, so the child never blocks on output
				buf := make([]byte, 1024)
				for {
					if _, err := master.Read(buf); err != nil {
						return
					}
				}
			}()
			before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "RSSH_PANIC_CHILD="+mode)
			var stderr bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("child: %v, want exit 2 from the panic\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "panic: forwarding goroutine failed") ||
				!strings.Contains(stderr.String(), "panicChild") {
				t.Errorf("panic trace lost or without its origin:\n%s", stderr.String())
			}
			after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			same := before.Lflag == after.Lflag && before.Iflag == after.Iflag && before.Oflag == after.Oflag
			if mode == "plain" && same {
				t.Fatal("control: a plain goroutine's panic left the terminal as it was; the test does not see raw mode")
			}
			if mode == "crash.Go" && !same {
				t.Fatalf("terminal left in raw mode:\nbefore %+v\nafter  %+v", *before, *after)
			}
		})
	}
}
