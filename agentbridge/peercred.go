package agentbridge

import (
	"log/slog"
	"net"
)

// peer is the process at the other end of a connection, as the kernel
// reports it when the connection is accepted.
type peer struct {
	UID uint32
	// PID is 0 when the system does not say.
	PID int
	// Command is the process's short name (Linux /proc/PID/comm, macOS
	// p_comm: at most 15 or 16 bytes); empty when it has already exited.
	Command string
}

// attrs are the peer's audit attributes, flat so that a log query can say
// uid=0 without knowing the nesting.
func (p peer) attrs() []slog.Attr {
	return []slog.Attr{
		slog.Int64("uid", int64(p.UID)),
		slog.Int("pid", p.PID),
		slog.String("cmd", p.Command),
	}
}

// peerOf asks the kernel who is connected on c. It is the one platform
// function (peercred_linux.go, peercred_darwin.go, peercred_other.go); an
// error means the peer is refused.
func peerOf(c *net.UnixConn) (peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var p peer
	var perr error
	if err := raw.Control(func(fd uintptr) { p, perr = peerCredentials(int(fd)) }); err != nil {
		return peer{}, err
	}
	if perr != nil {
		return peer{}, perr
	}
	p.Command = commandName(p.PID)
	return p, nil
}

// PeerPID is the process id of the other end of c as the kernel reports
// it: for a connection to a listening socket, the process that listens
// (rssh doctor uses it to find the bridge and the Nix daemon); 0 when the
// system does not say.
func PeerPID(c *net.UnixConn) (int, error) {
	p, err := peerOf(c)
	return p.PID, err
}
