package session

import (
	"context"
	"errors"
	"syscall"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/sshproxy"
)

// Hold connects and holds the connection, with its forwards, until the
// server or a signal ends it (-N): 0 for SIGTERM, as ssh, else 255.
func Hold(ctx context.Context, d Deps, cfg *config.Config) (int, error) {
	conn, err := d.Dialer.Dial(ctx, cfg, DialOptions{})
	if err != nil {
		return sshproxy.ExitFailure, err
	}
	defer conn.Close()
	conn.KeepAlive(cfg.ServerAliveInterval, cfg.ServerAliveCountMax)
	sigCtx, stopSignals := d.signals(nil)
	defer stopSignals()

	fwd, err := setUp(conn, d, cfg, d.Stderr)
	if err != nil {
		return sshproxy.ExitFailure, err
	}
	defer closeForwards(fwd)
	d.detach()
	select {
	case <-conn.Done():
		return sshproxy.ExitFailure, conn.Lost(0)
	case <-sigCtx.Done():
		var s *Signalled
		if errors.As(context.Cause(sigCtx), &s) && s.Signal == syscall.SIGTERM {
			return 0, nil
		}
		return sshproxy.ExitFailure, nil
	}
}
