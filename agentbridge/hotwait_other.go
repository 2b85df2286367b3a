//go:build !unix

package agentbridge

import "net"

func awaitReadable(net.Conn) {}
