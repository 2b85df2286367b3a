package sshproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Backoff bounds for a listener or a dial that ran out of resources.
const (
	minShortageBackoff = 5 * time.Millisecond
	maxShortageBackoff = time.Second
	// shortageDialWait is how long a connection the server forwards (-R)
	// waits for a file descriptor before it is refused.
	shortageDialWait = 10 * time.Second
)

// shortage is an error that passes when resources come back: out of file
// descriptors (EMFILE, ENFILE), buffers or memory.
func shortage(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// shortageQuiet is how long a forward must go without a shortage before
// another one is reported: a shortage is said once, not per failure nor
// per connection that briefly got through between failures.
const shortageQuiet = time.Minute

// shortageLog reports a forward's running out of resources once per
// shortage.
type shortageLog struct {
	mu   sync.Mutex
	last time.Time // the last failure
}

func (s *shortageLog) failed(warn io.Writer, what string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.last.IsZero() || now.Sub(s.last) > shortageQuiet {
		fmt.Fprintf(warn, "rssh: warning: %s: %v; retrying\n", what, unwrapOp(err))
	}
	s.last = now
}

// acceptLoop accepts on l until it is closed, handing each connection to
// serve. An accept that fails for want of file descriptors (or anything
// else that is not the listener closing) is not the end of the forward:
// the loop says so once, waits 5 ms doubling to 1 s, and tries again,
// while new connections wait in the kernel's backlog.
func acceptLoop(l net.Listener, warn io.Writer, serve func(net.Conn)) {
	var log shortageLog
	what := "accept on " + l.Addr().String()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.failed(warn, what, err)
			backoff = min(max(2*backoff, minShortageBackoff), maxShortageBackoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		serve(c)
	}
}

// dialShort is net.Dial that, out of file descriptors, waits for one
// (backing off as acceptLoop does) for at most shortageDialWait.
func dialShort(log *shortageLog, warn io.Writer, network, addr string) (net.Conn, error) {
	deadline := time.Now().Add(shortageDialWait)
	var backoff time.Duration
	for {
		c, err := net.Dial(network, addr)
		if err == nil || !shortage(err) || time.Now().After(deadline) {
			return c, err
		}
		log.failed(warn, "connecting for remote forwards", err)
		backoff = min(max(2*backoff, minShortageBackoff), maxShortageBackoff)
		time.Sleep(backoff)
	}
}
