//go:build !linux && !darwin

package resolverd

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// peerUID is not implemented here (neither Linux nor macOS): the daemon
// answers no one.
func peerUID(c *net.UnixConn) (uid, pid int, err error) {
	return -1, 0, errors.New("peer credentials are not implemented on this system")
}

func noDump() {}

// watchSession polls pid every second.
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
			time.Sleep(time.Second)
		}
	}()
	return ch, true
}
