package mux

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// peerUID is the peer's effective uid when it connected (LOCAL_PEERCRED,
// as getpeereid), recorded by the kernel.
func peerUID(fd int) (uint32, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, fmt.Errorf("LOCAL_PEERCRED: %w", err)
	}
	return cred.Uid, nil
}
