package sshproxy

import (
	"io"
	"log/slog"
	"net"

	"github.com/rssh/rssh/config"
)

// ServeSOCKS serves one SOCKS4, SOCKS4a or SOCKS5 CONNECT on c as a
// dynamic forward (-D) does, opening the target with dial; the mux
// package's master uses it for the -D forwards its clients ask for.
func ServeSOCKS(c net.Conn, dial func(network, addr string) (net.Conn, error), warn io.Writer) {
	serveSOCKS(c, dial, warn)
}

// ServeRemoteSOCKS serves one connection of a remote dynamic forward (-R
// with a port alone) as ssh does: the SOCKS request the server passed on
// is connected from here when permits (PermitRemoteOpen, nil for any)
// allows its destination, and closed unanswered when not.
func ServeRemoteSOCKS(c net.Conn, permits *config.OpenPermits, log *slog.Logger, warn io.Writer) {
	serveSOCKS(c, func(network, addr string) (net.Conn, error) {
		if !permitted(permits, addr) {
			log.Debug("requested forward not permitted", "target", addr)
			return nil, errNotPermitted
		}
		return net.Dial(network, addr)
	}, warn)
}
