package sshproxy

import (
	"io"
	"log/slog"

	"golang.org/x/crypto/ssh"

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

// ListenRemoteChannels asks the server to listen for a remote forward (on
// host and port, or on path when path is set) and hands each channel the
// server opens for it to serve unanswered: a mux proxy client answers
// them itself. Closing stop cancels the forward.
func (c *Conn) ListenRemoteChannels(host string, port int, path string, log *slog.Logger, serve func(ssh.NewChannel)) (stop io.Closer, allocated int, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rf, err := c.listenRemote(host, port, path, log, func(nc ssh.NewChannel, _ string) { serve(nc) })
	if err != nil {
		return nil, 0, err
	}
	return rf, rf.port, nil
}
