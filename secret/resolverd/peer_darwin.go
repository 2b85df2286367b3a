package resolverd

import (
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// peerUID is the uid of the process at the other end of c
// (LOCAL_PEERCRED); macOS gives no pid with it.
func peerUID(c *net.UnixConn) (uid, pid int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	var cred *unix.Xucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return -1, 0, err
	}
	if serr != nil {
		return -1, 0, serr
	}
	return int(cred.Uid), 0, nil
}

// noDump: macOS has PT_DENY_ATTACH but no per-process core-dump switch
// that Go reaches simply; nothing is done.
func noDump() {}

// watchSession polls pid every second (kill 0).
func watchSession(pid int) (<-chan struct{}, bool) {
	if pid <= 1 {
		return nil, false
	}
	p, _ := os.FindProcess(pid)
	if p.Signal(syscall.Signal(0)) != nil {
		return nil, false
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for p.Signal(syscall.Signal(0)) == nil {
			time.Sleep(time.Second) // polling another process's exit
		}
	}()
	return ch, true
}
