package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/mux"
	"github.com/rssh/rssh/sshproxy"
)

// hopMux is rssh's sshproxy.HopMux: a ProxyJump hop goes through a live
// master at the hop's own ControlPath, as OpenSSH's `ssh -W next hop`
// child does (muxclient before it connects). The hop's ControlPath and
// ControlMaster come from its own resolved config, as for a destination;
// only a live master is used — none is started for a hop. What the stream
// carries is the next hop's (or the destination's) SSH, made end to end
// by this rssh: a master on the way sees no session and no token.
func hopMux(log *slog.Logger, stderr io.Writer) sshproxy.HopMux {
	return func(ctx context.Context, hop *config.Config, host string, port int) (net.Conn, bool) {
		cs := controlOf(hop)
		if cs.path == "" {
			return nil, false
		}
		switch cs.master {
		case "true", "ask":
			// As ssh's muxclient: a connection that is to be a master
			// does not look for one.
			return nil, false
		case "auto", "autoask":
			log.Debug(fmt.Sprintf("auto-mux: Trying existing master at '%s'", cs.path))
		}
		target := net.JoinHostPort(host, strconv.Itoa(port))
		c, err := mux.Dial(cs.path, hop.ConnectTimeout)
		if err != nil {
			var pe *mux.PathError
			switch {
			case errors.Is(err, mux.ErrStale) && cs.master == "false":
				// As ssh (and a destination's own ControlPath): said, left
				// in place, and the hop is dialed.
				fmt.Fprintf(stderr, "rssh: control socket connect(%s): Connection refused\n", cs.path)
			case errors.As(err, &pe):
				log.Debug(pe.Msg)
			default:
				log.Debug(fmt.Sprintf("jump host %s: master at %s: %v", hop.Host, cs.path, err))
			}
			return nil, false
		}
		if dest, ok := c.Extension(extDest); ok && dest != destOf(hop) {
			c.Close()
			log.Debug(fmt.Sprintf("jump host %s: the master at %s serves %s, not %s; connecting directly", hop.Host, cs.path, dest, destOf(hop)))
			return nil, false
		}
		// A master that takes its time (ControlMaster ask) does not hold
		// up a signal: ctx's end closes the control connection.
		stop := context.AfterFunc(ctx, func() { c.Close() })
		s, err := c.StdioStream(host, uint32(port))
		if !stop() {
			if err == nil {
				s.Close()
			}
			return nil, false
		}
		if err != nil {
			c.Close()
			log.Debug(fmt.Sprintf("jump host %s: the master at %s did not open %s: %v; connecting directly", hop.Host, cs.path, target, err))
			return nil, false
		}
		log.Debug(fmt.Sprintf("jump host %s: stdio forward to %s through the master at %s", hop.Host, target, cs.path))
		return s, true
	}
}
