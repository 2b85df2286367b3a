package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
	"github.com/rssh/rssh/secretfwd"
	"github.com/rssh/rssh/sshproxy"
)

// agentFilterer is a Conn that can answer agent channels itself: rssh's
// own connection. A session through a ControlMaster cannot (the master
// owns the connection), so secret forwarding needs its own.
type agentFilterer interface {
	ServeAgentWith(socket string, optional bool, filter sshproxy.AgentFilter)
}

// secretForwarding is a session started with RsshForwardSecrets: the
// token stays in this process and the host asks, per reference, on the
// forwarded agent channel (package secretfwd).
type secretForwarding struct {
	srv   *secretfwd.Server
	close func()
}

// startSecretForwarding serves the session's agent channels through the
// secret filter. The token is fetched when the host first asks (op runs
// then at the earliest, always after Dial returned); the user's agent is
// behind the filter only with ForwardAgent.
func startSecretForwarding(conn Conn, d Deps, cfg *config.Config, plan *Plan, fetch *tokenFetch) (*secretForwarding, error) {
	af, ok := conn.(agentFilterer)
	if !ok {
		fetch.abandon()
		return nil, errors.New("secret forwarding needs its own connection, not a shared one (ControlMaster)")
	}
	path, err := secretfwd.DefaultAuditPath(d.getenv)
	if err != nil {
		fetch.abandon()
		return nil, err
	}
	audit, auditFile, err := secretfwd.OpenAudit(path, d.log())
	if err != nil {
		fetch.abandon()
		return nil, err
	}
	var (
		mu      sync.Mutex
		backend secret.Backend
		tok     envmap.Token
		used    bool
	)
	srv := &secretfwd.Server{
		Policy: secretfwd.Policy{Host: cfg.Host, RemoteUser: cfg.User, Env: plan.Env},
		Audit:  audit,
	}
	open := func(ctx context.Context) (secret.Backend, error) {
		mu.Lock()
		defer mu.Unlock()
		if backend == nil {
			if fetch == nil {
				return nil, fmt.Errorf("no token: this host has no environment")
			}
			if used {
				return nil, errors.New("the environment's token could not be fetched")
			}
			used = true
			t, err := fetch.token(ctx)
			if err != nil {
				return nil, fmt.Errorf("the %s token: %w", plan.Env, err)
			}
			tok = t
			b, err := secret.NewOpBackend(secret.OpOptions{Token: tok, Environ: d.Environ})
			if err != nil {
				return nil, err
			}
			backend = b
		}
		return backend, nil
	}
	srv.Resolve = func(ctx context.Context, refs []string) ([][]byte, error) {
		b, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return b.ResolveAll(ctx, refs)
	}
	if cfg.SecretConfirm {
		srv.Confirm = func(ref string) (bool, error) {
			if d.Confirm == nil {
				return false, errors.New("RsshSecretConfirm is on and there is neither askpass nor a terminal to ask on")
			}
			return d.Confirm(fmt.Sprintf("Allow %s@%s to read %s?", cfg.User, cfg.Host, ref))
		}
	}
	socket := ""
	if cfg.ForwardAgent != "no" {
		socket = d.Dialer.AgentForwardSocket(cfg)
	}
	af.ServeAgentWith(socket, true, func(ch, local io.ReadWriter) error { return srv.ServeChannel(ch, local) })
	return &secretForwarding{srv: srv, close: func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if !used {
			fetch.abandon()
		}
		tok.Wipe()
		auditFile.Close()
	}}, nil
}
