//go:build !linux

package agentbridge

import (
	"io"
	"net"
)

func newRawIO(c net.Conn) io.ReadWriter { return c }
