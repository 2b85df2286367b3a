//go:build linux || darwin

package secret

import (
	"os"

	"golang.org/x/sys/unix"
)

// foreground reports whether rssh's process group is the foreground
// group of the terminal tty.
func foreground(tty *os.File) bool {
	pg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && pg == unix.Getpgrp()
}

// rawOutput turns off a pty's output processing (\n to \r\n and the
// like), so the bytes the child writes reach the masker and rssh's
// terminal as written; the terminal does its own processing.
func rawOutput(slave *os.File) error {
	t, err := unix.IoctlGetTermios(int(slave.Fd()), ioctlGetTermios)
	if err != nil {
		return err
	}
	t.Oflag &^= unix.OPOST
	return unix.IoctlSetTermios(int(slave.Fd()), ioctlSetTermios, t)
}
