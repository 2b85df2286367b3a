//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package sshproxy

import "golang.org/x/sys/unix"

const (
	ioctlReadTermios        = unix.TIOCGETA
	posixVDisable           = 0xff // _POSIX_VDISABLE on the BSDs and macOS
	iutf8            uint64 = 0    // not in x/sys for these systems
)
