package resolverd

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerUID is the uid of the process at the other end of c (SO_PEERCRED),
// and its pid.
func peerUID(c *net.UnixConn) (uid, pid int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, 0, err
	}
	if serr != nil {
		return -1, 0, serr
	}
	return int(cred.Uid), int(cred.Pid), nil
}

// noDump keeps other processes of this user from reading the daemon's
// memory through ptrace or /proc/PID/mem, and the kernel from writing a
// core dump with the values in it.
func noDump() { unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }

// watchSession closes the returned channel when process pid (the session
// leader) exits, through a pidfd. ok is false when pid cannot be watched
// (gone already, or no pidfd support): the idle timeout alone ends the
// daemon then.
func watchSession(pid int) (gone <-chan struct{}, ok bool) {
	if pid <= 1 {
		return nil, false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, false
	}
	ch := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		defer close(ch)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n > 0 {
				return
			}
		}
	}()
	return ch, true
}
