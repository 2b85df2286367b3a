package sshproxy

import (
	"time"

	"github.com/rssh/rssh/internal/crash"
)

// KeepAlive is ServerAliveInterval/ServerAliveCountMax as OpenSSH's
// server_alive_check does it: every interval a miss is counted and a
// keepalive@openssh.com global request sent; any reply (OpenSSH answers
// with a failure) clears the count; when the count exceeds countMax the
// connection is closed, so the session ends at most interval ×
// (countMax+1) after the server stops answering, and Lost reports a
// TimeoutError.
//
// On a dead link a request can block forever (nothing acknowledges it), so
// requests go out from their own goroutine, one at a time, and the timer,
// not the request, decides.
func (c *Conn) KeepAlive(interval time.Duration, countMax int) {
	if interval <= 0 {
		return
	}
	crash.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		replies := make(chan struct{}, 1)
		inFlight, misses := false, 0
		for {
			select {
			case <-c.done:
				return
			case <-replies:
				inFlight, misses = false, 0
			case <-tick.C:
				misses++
				if misses > countMax {
					c.timedOut.Store(true)
					c.shutdown()
					return
				}
				if !inFlight {
					inFlight = true
					crash.Go(func() {
						if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
							replies <- struct{}{}
						}
					})
				}
			}
		}
	})
}
