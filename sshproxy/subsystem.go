package sshproxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/crash"
)

// runSubsystem runs a subsystem session (-s: sftp, netconf, …) on a bare
// session channel. x/crypto's Session cannot: RequestSubsystem does not
// start it, so its Wait reports "session not started" and the exit status
// is lost (golang/go#35025). scp and sftp run `ssh -s host sftp` and read
// that status. No terminal is requested, as for any session whose stdin
// is not one; escapes are off, as ssh has them off without a terminal.
func (c *Conn) runSubsystem(ctx context.Context, s Session) (int, error) {
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		if lost := c.Lost(time.Second); lost != nil {
			return ExitFailure, lost
		}
		return ExitFailure, fmt.Errorf("opening a session: %w", err)
	}
	defer ch.Close()
	defer c.track("session", "client-session").close()

	// The requests the server sends on the channel: the exit status (or
	// signal) arrives just before it closes. Each needs an answer when it
	// asks for one, or the server waits.
	status := make(chan int, 1)
	crash.Go(func() {
		got := false
		for req := range reqs {
			switch req.Type {
			case "exit-status":
				if len(req.Payload) >= 4 && !got {
					status <- int(binary.BigEndian.Uint32(req.Payload))
					got = true
				}
			case "exit-signal":
				// As OpenSSH: no status recorded for a death by signal.
				if !got {
					status <- ExitFailure
					got = true
				}
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
		if !got {
			status <- -1 // closed without a status
		}
	})

	if err := sendSetup(ch, s); err != nil {
		return ExitFailure, err
	}
	ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{s.Command}))
	if err != nil {
		if lost := c.Lost(time.Second); lost != nil {
			return ExitFailure, lost
		}
		return ExitFailure, fmt.Errorf("starting the subsystem %s: %w", s.Command, err)
	}
	if !ok {
		// OpenSSH's words for it.
		return ExitFailure, fmt.Errorf("subsystem request failed on channel 0")
	}

	var outputs sync.WaitGroup
	outputs.Add(2)
	crash.Go(func() { defer outputs.Done(); io.Copy(s.Stdout, ch) })
	crash.Go(func() { defer outputs.Done(); io.Copy(s.Stderr, ch.Stderr()) })
	crash.Go(func() {
		if s.Stdin != nil {
			io.Copy(ch, s.Stdin)
		}
		ch.CloseWrite() // EOF: the subsystem sees the end of its input
	})

	done := make(chan int, 1)
	crash.Go(func() {
		st := <-status
		outputs.Wait()
		done <- st
	})
	select {
	case st := <-done:
		if st >= 0 {
			return st, nil
		}
		if lost := c.Lost(250 * time.Millisecond); lost != nil {
			return ExitFailure, lost
		}
		return ExitFailure, nil
	case <-ctx.Done():
		return ExitFailure, ctx.Err()
	}
}
