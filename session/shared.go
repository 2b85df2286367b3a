package session

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/sshproxy"
)

// Shared computes, for a ControlMaster, what each session it runs for a
// client must carry: the env requests a fresh rssh would send to cfg's
// host (the winning SetEnv line, the client's variables that cfg's SendEnv
// patterns match, never rssh's own names from the client) and the token
// of cfg's environment, fetched for each session (the cache first), with
// the command preamble its transport needs. The master serves only cfg's
// host, so this is the one environment its sessions may get.
type Shared struct {
	cfg  *config.Config
	plan *Plan
	open func(ttl time.Duration) TokenSource
	log  *slog.Logger

	mu  sync.Mutex
	src TokenSource
}

// NewShared returns the env computer of a master for cfg. plan is nil (or
// without Env) when no token is planned.
func NewShared(cfg *config.Config, plan *Plan, tokens func(ttl time.Duration) TokenSource, getenv func(string) string, log *slog.Logger) (*Shared, error) {
	if plan == nil {
		plan = &Plan{}
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if err := plan.needVault(getenv); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shared{cfg: cfg, plan: plan, open: tokens, log: log}, nil
}

// Env is one session's env requests for a client that passed clientEnv
// (NAME=value), the preamble to put before its command, and a func that
// wipes the token once the requests are sent.
func (s *Shared) Env(ctx context.Context, clientEnv []string) (env []sshproxy.EnvVar, preamble string, wipe func(), err error) {
	env = sessionEnv(s.cfg, clientEnv, s.plan)
	if s.plan.Env == "" || s.open == nil {
		return env, "", func() {}, nil
	}
	s.mu.Lock()
	if s.src == nil {
		s.src = s.open(s.plan.TTL)
	}
	src := s.src
	s.mu.Unlock()
	tok, ok := src.Cached(s.plan.Vault, s.plan.Env)
	if !ok {
		if tok, err = src.Token(ctx, s.plan.Vault, s.plan.Env); err != nil {
			return nil, "", nil, err
		}
	}
	vars, preamble := tokenEnv(s.plan, tok)
	return append(env, vars...), preamble, tok.Wipe, nil
}

// TokenEnv is the environment whose token the sessions get, "" for none.
func (s *Shared) TokenEnv() string { return s.plan.Env }
