package sshproxy

import (
	"io"
	"net"
)

// ServeSOCKS serves one SOCKS4, SOCKS4a or SOCKS5 CONNECT on c as a
// dynamic forward (-D) does, opening the target with dial; the mux
// package's master uses it for the -D forwards its clients ask for.
func ServeSOCKS(c net.Conn, dial func(network, addr string) (net.Conn, error), warn io.Writer) {
	serveSOCKS(c, dial, warn)
}
