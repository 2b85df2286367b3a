package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyRun is a program (rssh or ssh) running on the slave side of a fresh
// pseudo-terminal that is its controlling terminal, as in a real terminal
// window: resizing the master makes the kernel send it SIGWINCH, and ^C
// typed on the master is SIGINT unless it put the terminal in raw mode.
type ptyRun struct {
	t      *testing.T
	master *os.File
	slave  *os.File
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	code   int
	before *unix.Termios
}

func startPTY(t *testing.T, w *world, program string, args ...string) *ptyRun {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyRun{t: t, master: master, slave: slave, out: &syncBuffer{}, done: make(chan struct{}), before: before}
	p.cmd = exec.Command(program, args...)
	p.cmd.Env = append(w.env, "TERM=xterm")
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		master.Close()
		slave.Close()
	})
	return p
}

func (p *ptyRun) send(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *ptyRun) expect(want string, d time.Duration) {
	p.t.Helper()
	if !p.out.WaitFor(want, d) {
		p.t.Fatalf("terminal never showed %q; it shows %q", want, p.out.String())
	}
}

// wait waits for the program to exit and returns its status.
func (p *ptyRun) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		p.t.Fatalf("still running after %v; terminal shows %q", d, p.out.String())
		return -1
	}
}

// termiosUnchanged fails unless the terminal's modes are what they were
// before the program ran.
func (p *ptyRun) termiosUnchanged() {
	p.t.Helper()
	after, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatal(err)
	}
	b := p.before
	if b.Iflag != after.Iflag || b.Oflag != after.Oflag || b.Cflag != after.Cflag || b.Lflag != after.Lflag || b.Cc != after.Cc {
		p.t.Fatalf("terminal modes changed:\nbefore %+v\nafter  %+v", *b, *after)
	}
}

// rssh with no command opens the login shell on a PTY: the prompt comes,
// commands run, a resize of the local terminal reaches the remote one, ^C
// goes to the remote, the shell's exit status comes back, and the local
// terminal is left as it was.
func TestInteractiveShell(t *testing.T) {
	w := newWorld(t, "", "")
	p := startPTY(t, w, rsshBin, "-F", w.config, "target")
	p.expect("$ ", 15*time.Second) // dash's prompt for a non-root login
	// The quotes keep the typed command (echoed back) from matching the prompt.
	p.send("PS1='rssh''$ '; echo $((6*7))x\r")
	p.expect("42x", 10*time.Second)
	p.expect("rssh$ ", 10*time.Second)

	p.send("stty size\r")
	p.expect("24 80", 10*time.Second)

	// The kernel sends rssh SIGWINCH; rssh sends window-change. It lands
	// asynchronously, so ask again until it shows, a bounded number of times.
	if err := pty.Setsize(p.master, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	resized := false
	for i := 0; i < 50 && !resized; i++ {
		p.send("stty size\r")
		resized = p.out.WaitFor("40 100", 200*time.Millisecond)
	}
	if !resized {
		t.Fatalf("the remote terminal never saw the resize; terminal shows %q", p.out.String())
	}

	// ^C reaches the remote's foreground job, not rssh.
	p.send("sleep 30; echo not-''interrupted\r")
	p.expect("sleep 30; echo not-''interrupted\r\n", 10*time.Second)
	// The echo is the terminal's, before the shell has run anything: wait
	// for the sleep itself, so ^C finds it (under load the shell lags).
	if !pollUntil(10*time.Second, func() bool { return sleepRunning("30") }) {
		t.Fatalf("the remote sleep never started; terminal shows %q", p.out.String())
	}
	prompts := strings.Count(p.out.String(), "rssh$ ")
	p.send("\x03")
	if !pollUntil(10*time.Second, func() bool { return strings.Count(p.out.String(), "rssh$ ") > prompts }) {
		t.Fatalf("no prompt after ^C; terminal shows %q", p.out.String())
	}
	p.send("echo after-''interrupt\r")
	p.expect("after-interrupt", 10*time.Second)
	if strings.Contains(p.out.String(), "not-interrupted") {
		t.Fatal("^C did not reach the remote sleep")
	}

	p.send("exit 7\r")
	if code := p.wait(15 * time.Second); code != 7 {
		t.Fatalf("want the shell's exit status 7, got %d; terminal shows %q", code, p.out.String())
	}
	p.expect("Connection to 127.0.0.1 closed.", time.Second)
	p.termiosUnchanged()
}

// ~. after a newline disconnects (exit 255, as ssh), ~? lists the escapes,
// and the local terminal is restored.
func TestEscapeDisconnect(t *testing.T) {
	w := newWorld(t, "", "")
	p := startPTY(t, w, rsshBin, "-F", w.config, "-t", "target", "PS1='rssh$ ' sh -i")
	p.expect("rssh$ ", 15*time.Second)
	p.send("\r~?")
	p.expect("Supported escape sequences:", 10*time.Second)
	// Not after a newline, ~. is just text for the remote.
	p.send("echo a~.b\r")
	p.expect("a~.b\r\n", 10*time.Second)
	p.send("\r~.")
	if code := p.wait(10 * time.Second); code != 255 {
		t.Fatalf("~. should exit 255 as ssh does, got %d; terminal shows %q", code, p.out.String())
	}
	p.termiosUnchanged()
}

// EscapeChar none turns escapes off: ~. goes to the remote shell.
func TestEscapeCharNone(t *testing.T) {
	w := newWorld(t, "", "")
	p := startPTY(t, w, rsshBin, "-F", w.config, "-e", "none", "-t", "target", "PS1='rssh$ ' sh -i")
	p.expect("rssh$ ", 15*time.Second)
	p.send("\r~.\r")
	p.expect("~.: not found", 10*time.Second)
	p.send("exit 3\r")
	if code := p.wait(10 * time.Second); code != 3 {
		t.Fatalf("want 3, got %d", code)
	}
	p.termiosUnchanged()
}

// Ctrl-C on a session without a PTY ends the local client with 255, as ssh
// does, and the server then ends the session.
func TestInterruptExecSession(t *testing.T) {
	w := newWorld(t, "", "")
	for _, prog := range []string{rsshBin, "ssh"} {
		t.Run(prog[strings.LastIndexByte(prog, '/')+1:], func(t *testing.T) {
			if prog == "ssh" {
				prog = w.sshBin()
			}
			p := startPTY(t, w, prog, "-F", w.config, "-T", "target", "echo ready; exec sleep 60")
			p.expect("ready", 15*time.Second)
			p.send("\x03") // the line discipline turns it into SIGINT
			if code := p.wait(10 * time.Second); code != 255 {
				t.Fatalf("want exit 255 after ^C, got %d; terminal shows %q", code, p.out.String())
			}
			p.termiosUnchanged()
			waitNoSessions(t, w)
		})
	}
}

// pollUntil polls cond every 10 ms until it holds or d has passed.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// The terminal comes back when the session ends other than by the shell
// exiting: a signal to rssh (255, quiet, as ssh) or the connection dying
// under it (255 and one line saying so).
func TestTerminalRestoredOnSignalAndLoss(t *testing.T) {
	w := newWorld(t, "", "")
	t.Run("SIGTERM", func(t *testing.T) {
		p := startPTY(t, w, rsshBin, "-F", w.config, "-t", "target", "PS1='rssh$ ' sh -i")
		p.expect("rssh$ ", 15*time.Second)
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(10 * time.Second); code != 255 {
			t.Fatalf("want 255, got %d", code)
		}
		p.termiosUnchanged()
	})
	t.Run("connection lost", func(t *testing.T) {
		waitNoSessions(t, w)
		p := startPTY(t, w, rsshBin, "-F", w.config, "-t", "target", "PS1='rssh$ ' sh -i")
		p.expect("rssh$ ", 15*time.Second)
		// Only sshd's own processes: were the shell killed too, its
		// session could still report the death (exit-signal) before the
		// connection went, and rssh would rightly print "Connection to …
		// closed." instead.
		for _, pid := range descendants(w.sshd.PID()) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.HasPrefix(string(comm), "sshd") {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if code := p.wait(10 * time.Second); code != 255 {
			t.Fatalf("want 255, got %d; terminal shows %q", code, p.out.String())
		}
		p.expect("rssh: connection to 127.0.0.1 port", time.Second)
		p.termiosUnchanged()
	})
}

// sleepRunning reports whether a `sleep ARG` process runs on this machine
// (the test's sshd is local).
func sleepRunning(arg string) bool {
	want := "sleep\x00" + arg + "\x00"
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == want {
			return true
		}
	}
	return false
}
