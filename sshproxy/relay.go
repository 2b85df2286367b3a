package sshproxy

import (
	"context"
	"io"
	"net"

	"github.com/rssh/rssh/config"

	"github.com/rssh/rssh/internal/crash"
)

// DialStream opens a plain byte stream to cfg.Hostname:cfg.Port, routed as
// Dial routes an SSH connection — through cfg's ProxyJump chain (each hop
// authenticated and its host key checked; the last one opens a direct-tcpip
// channel to the destination, unless a hop's live master carries the stream
// from there: see Client.HopMux), through its ProxyCommand, or directly —
// but with no SSH of its own on top: it is what `ProxyCommand rssh --bridge %h %p`
// relays for OpenSSH's ssh. Closing the stream closes the hops under it. The
// stream's CloseWrite, when it has one, passes a half-close on.
//
// A caller that is itself a ProxyCommand must clear a ProxyCommand that names
// it, or the stream would run itself.
func (cl *Client) DialStream(ctx context.Context, cfg *config.Config) (net.Conn, error) {
	switch {
	case cfg.ProxyJump != "":
		return cl.jumpStream(ctx, cfg)
	case cfg.ProxyCommand != "":
		return cl.proxyCommand(cfg)
	default:
		return dialTCP(ctx, cfg, cl.Log)
	}
}

// hopStream is a direct-tcpip channel and the jump connection carrying it.
type hopStream struct {
	net.Conn
	hop *Conn
}

func (s *hopStream) Close() error {
	err := s.Conn.Close()
	s.hop.Close()
	return err
}

// CloseWrite sends the channel's EOF (x/crypto's channel conn has it).
func (s *hopStream) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// CloseWrite closes the proxy command's stdin: its EOF.
func (c *cmdConn) CloseWrite() error { return c.w.Close() }

// Splice copies in to conn and conn to out at once, with half-close both
// ways: EOF on in becomes conn's CloseWrite, and EOF from conn calls
// closeOut (closing the process's stdout, so the reader sees EOF while in
// may still be sending). It returns when both directions are done, or as
// soon as one fails. Failing to send after the far side has ended its own
// direction is the normal end of a connection, not an error.
func Splice(conn net.Conn, in io.Reader, out io.Writer, closeOut func() error) error {
	type result struct {
		up  bool
		err error
	}
	done := make(chan result, 2)
	crash.Go(func() {
		_, err := io.Copy(conn, in)
		if err == nil {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				err = cw.CloseWrite()
			}
		}
		done <- result{true, err}
	})
	crash.Go(func() {
		_, err := io.Copy(out, conn)
		if err == nil && closeOut != nil {
			err = closeOut()
		}
		done <- result{false, err}
	})
	var downDone bool
	for i := 0; i < 2; i++ {
		r := <-done
		switch {
		case r.err == nil:
			downDone = downDone || !r.up
		case r.up && downDone:
			// The destination closed and then our sending failed: it is gone.
		default:
			return r.err
		}
	}
	return nil
}
