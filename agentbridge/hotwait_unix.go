//go:build unix

package agentbridge

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// hotWaiters bounds the threads that may sit in poll(2) for an upstream
	// answer at once; past it, requests wait in Go's netpoller as usual.
	hotWaiters = 8
	// hotWaitMax is how long one request keeps its thread in poll(2): a
	// local agent answers a signature in well under it, while one waiting
	// for the user (1Password's approval prompt) falls back to the
	// netpoller instead of holding a thread for minutes.
	hotWaitMax = 50 * time.Millisecond
)

var hotSlots = make(chan struct{}, hotWaiters)

// awaitReadable blocks the calling thread in poll(2) until c has data, for
// at most hotWaitMax. It is only a latency optimisation: the read that
// follows works the same whether it returned early, late or not at all.
//
// Why: waiting for the agent's answer in Go's netpoller parks the goroutine,
// idles the thread, and on wake-up goes through the scheduler (and wakes
// sysmon), each a cross-CPU wake-up. Sleeping in poll(2) on this thread is
// one kernel wake-up, as in a C relay. Measured with bench/bridge on a
// 2-vCPU VM it takes about 60 µs off every signature.
func awaitReadable(c net.Conn) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return
	}
	select {
	case hotSlots <- struct{}{}:
		defer func() { <-hotSlots }()
	default:
		return
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		deadline := time.Now().Add(hotWaitMax)
		for {
			ms := int(time.Until(deadline) / time.Millisecond)
			if ms <= 0 {
				return
			}
			if _, err := unix.Poll(fds, ms); err != unix.EINTR {
				return
			}
		}
	})
}
