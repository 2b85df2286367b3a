package agentbridge

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// xucredVersion is XUCRED_VERSION from <sys/ucred.h>; x/sys does not export it.
const xucredVersion = 0

// peerCredentials reads LOCAL_PEERCRED (the peer's effective uid when it
// connected) and LOCAL_PEERPID, both at level SOL_LOCAL, recorded by the
// kernel, so the peer cannot forge them.
func peerCredentials(fd int) (peer, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return peer{}, fmt.Errorf("LOCAL_PEERCRED: %w", err)
	}
	if cred.Version != xucredVersion {
		return peer{}, fmt.Errorf("LOCAL_PEERCRED: unknown xucred version %d", cred.Version)
	}
	p := peer{UID: cred.Uid}
	// The pid only feeds the audit line; a failure here does not refuse.
	if pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
		p.PID = pid
	}
	return p, nil
}

// commandName is for the audit line only, never for policy: a process
// names itself, and the pid may be reused once the peer exits.
func commandName(pid int) string {
	if pid <= 0 {
		return ""
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(kp.Proc.P_pid) != pid {
		return ""
	}
	return unix.ByteSliceToString(kp.Proc.P_comm[:])
}
