package session

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/sshproxy"

	"github.com/rssh/rssh/internal/crash"
)

// Stdio connects and relays Stdin and Stdout to target, host:port, through
// the server (-W). A bad target is refused before connecting, as ssh does.
func Stdio(ctx context.Context, d Deps, cfg *config.Config, target string) (int, error) {
	host, port, err := splitHostPort(target)
	if err != nil {
		return sshproxy.ExitFailure, err
	}
	conn, err := d.Dialer.Dial(ctx, cfg, DialOptions{})
	if err != nil {
		return sshproxy.ExitFailure, err
	}
	defer conn.Close()
	conn.KeepAlive(cfg.ServerAliveInterval, cfg.ServerAliveCountMax)
	sigCtx, stopSignals := d.signals(nil)
	defer stopSignals()

	done := make(chan error, 1)
	d.detach()
	crash.Go(func() { done <- conn.Forward(host, port, d.Stdin, d.Stdout) })
	select {
	case err = <-done:
	case <-sigCtx.Done():
		return sshproxy.ExitFailure, nil
	}
	if err != nil {
		return sshproxy.ExitFailure, err
	}
	return 0, nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, ok := strings.Cut(s, ":")
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]:"); i > 0 {
			host, port, ok = s[1:i], s[i+2:], true
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if !ok || host == "" || err != nil || n == 0 {
		return "", 0, fmt.Errorf("bad stdio forwarding specification '%s': want host:port", s)
	}
	return host, int(n), nil
}
