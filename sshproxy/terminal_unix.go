//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sshproxy

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/internal/crash"
)

// Modes are the terminal's modes in the SSH encoding (RFC 4254 section 8),
// built from its termios as OpenSSH's tty_make_modes does, so the remote
// terminal erases, interrupts and echoes as the local one does. None when
// the file is not a terminal.
func (t *Terminal) Modes() ssh.TerminalModes {
	tio, err := unix.IoctlGetTermios(t.fd, ioctlReadTermios)
	if err != nil {
		return ssh.TerminalModes{}
	}
	m := ssh.TerminalModes{ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	for op, idx := range map[uint8]int{
		ssh.VINTR: unix.VINTR, ssh.VQUIT: unix.VQUIT, ssh.VERASE: unix.VERASE, ssh.VKILL: unix.VKILL,
		ssh.VEOF: unix.VEOF, ssh.VEOL: unix.VEOL, ssh.VEOL2: unix.VEOL2, ssh.VSTART: unix.VSTART,
		ssh.VSTOP: unix.VSTOP, ssh.VSUSP: unix.VSUSP, ssh.VREPRINT: unix.VREPRINT,
		ssh.VWERASE: unix.VWERASE, ssh.VLNEXT: unix.VLNEXT, ssh.VDISCARD: unix.VDISCARD,
	} {
		c := uint32(tio.Cc[idx])
		if c == posixVDisable {
			c = 255 // OpenSSH's encoding of a disabled character
		}
		m[op] = c
	}
	flag := func(field uint64, bits map[uint8]uint64) {
		for op, b := range bits {
			if field&b != 0 {
				m[op] = 1
			} else {
				m[op] = 0
			}
		}
	}
	flag(uint64(tio.Iflag), map[uint8]uint64{
		ssh.IGNPAR: unix.IGNPAR, ssh.PARMRK: unix.PARMRK, ssh.INPCK: unix.INPCK, ssh.ISTRIP: unix.ISTRIP,
		ssh.INLCR: unix.INLCR, ssh.IGNCR: unix.IGNCR, ssh.ICRNL: unix.ICRNL, ssh.IXON: unix.IXON,
		ssh.IXANY: unix.IXANY, ssh.IXOFF: unix.IXOFF, ssh.IMAXBEL: unix.IMAXBEL,
	})
	if iutf8 != 0 {
		flag(uint64(tio.Iflag), map[uint8]uint64{ssh.IUTF8: iutf8})
	}
	flag(uint64(tio.Lflag), map[uint8]uint64{
		ssh.ISIG: unix.ISIG, ssh.ICANON: unix.ICANON, ssh.ECHO: unix.ECHO, ssh.ECHOE: unix.ECHOE,
		ssh.ECHOK: unix.ECHOK, ssh.ECHONL: unix.ECHONL, ssh.NOFLSH: unix.NOFLSH, ssh.TOSTOP: unix.TOSTOP,
		ssh.IEXTEN: unix.IEXTEN, ssh.ECHOCTL: unix.ECHOCTL, ssh.ECHOKE: unix.ECHOKE, ssh.PENDIN: unix.PENDIN,
	})
	flag(uint64(tio.Oflag), map[uint8]uint64{
		ssh.OPOST: unix.OPOST, ssh.ONLCR: unix.ONLCR, ssh.OCRNL: unix.OCRNL, ssh.ONOCR: unix.ONOCR,
		ssh.ONLRET: unix.ONLRET,
	})
	flag(uint64(tio.Cflag), map[uint8]uint64{ssh.PARENB: unix.PARENB, ssh.PARODD: unix.PARODD})
	if uint64(tio.Cflag)&unix.CSIZE == unix.CS7 {
		m[ssh.CS7], m[ssh.CS8] = 1, 0
	} else if uint64(tio.Cflag)&unix.CSIZE == unix.CS8 {
		m[ssh.CS7], m[ssh.CS8] = 0, 1
	}
	return m
}

// WatchSize reports the terminal's new size on every SIGWINCH until ctx
// ends.
func (t *Terminal) WatchSize(ctx context.Context) <-chan WindowSize {
	out := make(chan WindowSize, 1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	crash.Go(func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- t.Size():
				case <-ctx.Done():
					return
				}
			}
		}
	})
	return out
}

// Suspend is ~^Z: the terminal goes back to its modes, rssh stops as if
// ^Z had been typed to a local program, and raw mode returns when the
// shell continues it.
func (t *Terminal) Suspend() {
	wasRaw := t.Raw()
	t.Restore()
	syscall.Kill(0, syscall.SIGTSTP) // the process group, as a typed ^Z would
	if wasRaw {
		t.MakeRaw()
	}
}

// maxLine is read_passphrase's buffer: longer lines are cut there.
const maxLine = 1023

// ReadLine is OpenSSH's read_passphrase with RP_ECHO for the ~C command
// line: it writes prompt to w and reads one line from the terminal in
// whatever mode the caller left it (cooked, so the tty echoes and edits).
// The line ends at \n, \r or end of input and is cut at 1023 bytes; ok is
// false when Interrupt ended the wait. It reads a byte at a time so that
// input typed after the line stays for the session.
func (t *Terminal) ReadLine(prompt string, w io.Writer) (line string, ok bool) {
	r, wake, err := os.Pipe()
	if err != nil {
		return "", false
	}
	defer r.Close()
	defer wake.Close()
	t.mu.Lock()
	t.wake = wake
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.wake = nil
		t.mu.Unlock()
	}()

	io.WriteString(w, prompt)
	var b []byte
	fds := []unix.PollFd{{Fd: int32(t.fd), Events: unix.POLLIN}, {Fd: int32(r.Fd()), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return string(b), true
		}
		if fds[1].Revents != 0 {
			return "", false
		}
		var c [1]byte
		n, err := unix.Read(t.fd, c[:])
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case n == 0 || err != nil:
			return string(b), true
		case c[0] == '\n' || c[0] == '\r':
			return string(b), true
		case len(b) < maxLine:
			b = append(b, c[0])
		}
	}
}
