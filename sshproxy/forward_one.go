package sshproxy

import (
	"io"

	"github.com/rssh/rssh/config"
)

// StartForward starts one forward of kind from spec, as -L, -R and -D do,
// for a connection-sharing master whose clients ask for forwards one at a
// time. Closing the returned Closer stops that forward alone; port is the
// port the server chose for a remote forward of port 0, else 0.
func (c *Conn) StartForward(kind config.ForwardKind, spec string, fw Forwards) (stop io.Closer, port int, err error) {
	if err := fw.parsePermits(); err != nil {
		return nil, 0, err
	}
	f := &Forwarding{c: c, fw: fw}
	if err := f.start(kind, spec); err != nil {
		return nil, 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if kind == config.RemoteForward && len(f.listeners) == 1 {
		port = f.listeners[0].fwd.ListenPort
	}
	return f, port, nil
}
