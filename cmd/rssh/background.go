package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/rssh/rssh/internal/crash"
	"github.com/rssh/rssh/sshproxy"
)

// -f (ForkAfterAuthentication): OpenSSH forks once the connection is
// authenticated and its forwards are up, and the parent exits 0. Go cannot
// fork a running process, so rssh with -f starts itself again at once: the
// child does the whole job with the terminal still its own (a passphrase
// prompt works), and where ssh forks it leaves the terminal's session and
// says so on a pipe, upon which this process exits 0. Should the child end
// first (authentication failed, say), this process exits with its status,
// as ssh would have.

// backgroundFDEnv names, in a -f child, the descriptor of that pipe.
const backgroundFDEnv = "RSSH_BACKGROUND_FD"

// errNoCommandToFork is ssh's "Cannot fork into background without a
// command to execute.", in rssh's voice and with the usual fix.
var errNoCommandToFork = &hintError{
	err:  errors.New("cannot fork into background without a command to execute"),
	hint: "add -N to keep only the forwards in the background, or give a command",
}

// detacher is a -f child's end of the pipe; nil in any other rssh.
type detacher struct{ f *os.File }

// takeDetacher returns the detacher if this rssh is a -f child, and takes
// the variable out of the environment so that nothing rssh runs (a
// ProxyCommand, op) inherits it. A stray variable is ignored unless -f is
// given and descriptor 3 is a pipe: rssh never writes to a descriptor it
// merely happened to inherit.
func takeDetacher(fork bool, getenv func(string) string) *detacher {
	v := getenv(backgroundFDEnv)
	os.Unsetenv(backgroundFDEnv)
	if !fork || v != "3" {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(3, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return nil
	}
	return &detacher{f: os.NewFile(3, "rssh-background")}
}

// detach leaves the terminal's session, as daemon(3) does for ssh, and
// lets the waiting parent exit 0. Output still goes where it went.
func (d *detacher) detach() {
	if d == nil || d.f == nil {
		return
	}
	syscall.Setsid()
	d.f.Write([]byte{'\n'})
	d.f.Close()
	d.f = nil
}

// runInBackground is the -f parent: it starts rssh again with the same
// arguments and waits until the child has detached or ended.
func runInBackground(args []string, std stdio) int {
	exe, err := os.Executable()
	if err != nil {
		fail(std.err, fmt.Errorf("going to the background: %w", err))
		return sshproxy.ExitFailure
	}
	r, w, err := os.Pipe()
	if err != nil {
		fail(std.err, fmt.Errorf("going to the background: %w", err))
		return sshproxy.ExitFailure
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = std.in, std.out, std.err
	cmd.ExtraFiles = []*os.File{w} // descriptor 3 in the child
	cmd.Env = append(os.Environ(), backgroundFDEnv+"=3")
	// A signal meant for rssh reaches the child, which answers it as rssh
	// does; one the caller set to be ignored (nohup) stays ignored, for
	// the child inherits that.
	sigs := make(chan os.Signal, 4)
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		if !signal.Ignored(s) {
			signal.Notify(sigs, s)
		}
	}
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		w.Close()
		fail(std.err, fmt.Errorf("going to the background: %w", err))
		return sshproxy.ExitFailure
	}
	w.Close()
	crash.Go(func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	})
	if n, _ := r.Read(make([]byte, 1)); n == 1 {
		return 0 // detached: it carries on without us
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		return sshproxy.ExitFailure
	}
}
