package sshproxy

import "golang.org/x/sys/unix"

const (
	ioctlReadTermios        = unix.TCGETS
	posixVDisable           = 0 // _POSIX_VDISABLE on Linux
	iutf8            uint64 = unix.IUTF8
)
