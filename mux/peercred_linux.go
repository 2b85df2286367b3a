package mux

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// peerUID is the peer's effective uid when it connected (SO_PEERCRED),
// recorded by the kernel.
func peerUID(fd int) (uint32, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return cred.Uid, nil
}
