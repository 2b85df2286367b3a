package agentbridge

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// peerCredentials reads SO_PEERCRED: the uid and pid the peer had when it
// connected, recorded by the kernel, so the peer cannot forge them.
func peerCredentials(fd int) (peer, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peer{}, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return peer{UID: cred.Uid, PID: int(cred.Pid)}, nil
}

// commandName is for the audit line only, never for policy: a process
// names itself, and the pid may be reused once the peer exits.
func commandName(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}
