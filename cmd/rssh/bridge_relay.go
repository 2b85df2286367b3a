package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/rssh/rssh/agentbridge"
	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/sshproxy"

	"github.com/rssh/rssh/internal/crash"
)

// runRelay is `rssh --bridge HOST PORT`, for `ProxyCommand rssh --bridge %h
// %p`: stdin and stdout relayed to HOST:PORT, routed as rssh's ssh_config
// routes HOST (its ProxyJump chain, where a hop with a live master goes
// through it, else directly: a plain TCP connect costs less than any
// master), with half-close both ways. Nothing of rssh's own goes to stdout, which is the SSH stream;
// errors go to stderr and exit 255.
//
// HOST is resolved with ssh_config's Host patterns like any destination
// (ssh's %h is the HostName it resolved, %n the name as typed), PORT wins
// over the config's Port. A ProxyCommand that runs `rssh --bridge` again is
// ignored — that is this relay — and any other is run.
//
// "Makes sure the agent bridge is up" means: if SSH_AUTH_SOCK (inherited
// from the ssh that runs the relay) names a socket nothing answers on, say
// so on stderr with the fix. The relay never starts a bridge: it may run as
// root for the Nix daemon, where a bridge would expose root's agent rather
// than the user's, and a daemon must not outlive the ssh that started it;
// launchd or systemd keep the user's bridge running.
func runRelay(a *bridgeArgs, std stdio, getenv func(string) string) error {
	host, portArg := a.positional[0], a.positional[1]
	port, err := strconv.ParseUint(portArg, 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("bad port %q", portArg)
	}
	cfg, err := config.Resolve(config.Request{Host: host, Options: []string{"Port " + portArg}, ConfigFile: a.configFile})
	if err != nil {
		return err
	}
	logLevel := cfg.LogLevel
	if a.verbose > 0 {
		logLevel = fmt.Sprintf("DEBUG%d", min(a.verbose, 3))
	}
	log := slog.New(newSSHLogHandler(std.err, newLogLevel(logLevel)))

	if sock := getenv("SSH_AUTH_SOCK"); sock != "" && !agentbridge.Alive(sock) {
		fmt.Fprintf(std.err, "rssh: warning: the agent at SSH_AUTH_SOCK=%s does not answer\n", sock)
		fmt.Fprintf(std.err, "rssh: hint: if it is the agent bridge, start it as the user who owns the agent: rssh --bridge (or its service: rssh --bridge --print-service launchd|systemd)\n")
	} else if sock == "" {
		if p, err := agentbridge.DefaultListenPath(); err == nil {
			log.Debug("agent bridge", "listen", p, "alive", agentbridge.Alive(p))
		}
	}

	if cfg.ProxyCommand != "" && isBridgeRelay(cfg.ProxyCommand) {
		log.Debug("ignoring ProxyCommand that runs this relay", "command", cfg.ProxyCommand)
		cfg.ProxyCommand = ""
	}
	cl := newClient(resolveHop(a.configFile, true), log, getenv, std.err)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	conn, err := cl.DialStream(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	defer conn.Close()
	crash.Go(func() { <-ctx.Done(); conn.Close() })
	closeOut := func() error {
		if f, ok := std.out.(*os.File); ok {
			return f.Close()
		}
		return nil
	}
	if err := sshproxy.Splice(conn, std.in, std.out, closeOut); err != nil && ctx.Err() == nil {
		return fmt.Errorf("relay to %s port %d: %w", cfg.Hostname, cfg.Port, err)
	}
	// A signal ends the relay quietly: OpenSSH's ssh sends its ProxyCommand
	// SIGHUP on every exit, so it is the normal end, not an error.
	return nil
}

// errInterrupted is a relay stopped by a signal before it connected: exit
// 255 with nothing to say, the signal's sender knows why.
var errInterrupted = errors.New("interrupted")

// isBridgeRelay reports whether a ProxyCommand runs rssh's relay, which
// would be this process running itself.
func isBridgeRelay(cmd string) bool {
	f := strings.Fields(cmd)
	for i, w := range f {
		if strings.HasSuffix(w, "rssh") && i+1 < len(f) && f[i+1] == "--bridge" {
			return true
		}
	}
	return false
}
