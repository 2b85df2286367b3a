//go:build unix

package mux

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// errStopped is a read or write on an fdStream after Stop.
var errStopped = errors.New("stopped")

// fdStream reads and writes a descriptor a client passed without ever
// changing its flags (O_NONBLOCK is shared with the client's shell) and
// can be stopped while it waits: a reader left blocked on a terminal
// after its session ended would steal the user's next keystroke.
type fdStream struct {
	f            *os.File
	fd           int
	wakeR, wakeW int
	stopOnce     sync.Once
	closeOnce    sync.Once
	// ops holds a read lock per Read or Write under way; Close takes the
	// write lock after Stop, so the descriptor is never closed (and its
	// number reused) under a read.
	ops    sync.RWMutex
	closed bool
}

func newFdStream(f *os.File) (*fdStream, error) {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		return nil, err
	}
	for _, fd := range p {
		unix.CloseOnExec(fd)
		unix.SetNonblock(fd, true)
	}
	return &fdStream{f: f, fd: int(f.Fd()), wakeR: p[0], wakeW: p[1]}, nil
}

// wait polls for ev on the descriptor or a Stop, whichever comes first.
func (s *fdStream) wait(ev int16) error {
	for {
		fds := []unix.PollFd{{Fd: int32(s.fd), Events: ev}, {Fd: int32(s.wakeR), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if fds[1].Revents != 0 {
			return errStopped
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			return unix.EBADF
		}
		if fds[0].Revents != 0 {
			return nil
		}
	}
}

func (s *fdStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.ops.RLock()
	defer s.ops.RUnlock()
	if s.closed {
		return 0, errStopped
	}
	for {
		if err := s.wait(unix.POLLIN); err != nil {
			return 0, err
		}
		n, err := unix.Read(s.fd, p)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case err == unix.EIO:
			// A terminal whose other side went away.
			return 0, io.EOF
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (s *fdStream) Write(p []byte) (int, error) {
	s.ops.RLock()
	defer s.ops.RUnlock()
	if s.closed {
		return 0, errStopped
	}
	written := 0
	for written < len(p) {
		if err := s.wait(unix.POLLOUT); err != nil {
			return written, err
		}
		n, err := unix.Write(s.fd, p[written:])
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// Stop wakes every Read and Write waiting on s; later ones fail at once.
func (s *fdStream) Stop() {
	s.stopOnce.Do(func() { unix.Write(s.wakeW, []byte{0}) })
}

// Close stops s and closes the descriptor and the wake pipe.
func (s *fdStream) Close() error {
	s.Stop()
	var err error
	s.closeOnce.Do(func() {
		s.ops.Lock()
		defer s.ops.Unlock()
		s.closed = true
		err = s.f.Close()
		unix.Close(s.wakeR)
		unix.Close(s.wakeW)
	})
	return err
}
