//go:build unix

package mux

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sendFd passes fd over c as OpenSSH's mm_send_fd does: one byte of data
// carrying one SCM_RIGHTS descriptor per message.
func sendFd(c *net.UnixConn, fd int) error {
	n, oobn, err := c.WriteMsgUnix([]byte{0}, unix.UnixRights(fd), nil)
	if err != nil {
		return fmt.Errorf("sending a descriptor: %w", err)
	}
	if n != 1 || oobn == 0 {
		return errors.New("sending a descriptor: short write")
	}
	return nil
}

// recvFd receives one descriptor sent by mm_send_fd (or sendFd). Anything
// else in the message (more descriptors, other control messages) is closed
// and refused.
func recvFd(c *net.UnixConn) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room to see, and close, a few extra fds
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receiving a descriptor: %w", err)
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("receiving a descriptor: %w", err)
		}
		for _, m := range msgs {
			got, err := unix.ParseUnixRights(&m)
			if err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if n != 1 || len(fds) != 1 || flags&unix.MSG_CTRUNC != 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		if n == 0 {
			return nil, errors.New("receiving a descriptor: connection closed")
		}
		return nil, fmt.Errorf("receiving a descriptor: expected one, got %d", len(fds))
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "mux-fd"), nil
}
