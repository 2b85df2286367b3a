package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/sshproxy"

	"github.com/rssh/rssh/internal/crash"
)

// The names the remote side receives: DESIGN.md's contract.
const (
	TokenVar = "OP_SERVICE_ACCOUNT_TOKEN"
	EnvVar   = "RSSH_ENV"
	// The "lc" transport's names, which stock Debian/Ubuntu servers accept
	// through "AcceptEnv LANG LC_*".
	LCTokenVar = "LC_RSSH_OP_SERVICE_ACCOUNT_TOKEN"
	LCEnvVar   = "LC_RSSH_ENV"
)

// ownVar reports whether name is one of rssh's own variables, which never
// travel by SendEnv and never reach a LocalCommand.
func ownVar(name string) bool {
	switch name {
	case TokenVar, EnvVar, LCTokenVar, LCEnvVar:
		return true
	}
	return false
}

// TokenSource is where a session's token comes from: *envmap.Resolver (the
// cache, then op), or a fake in tests.
type TokenSource interface {
	// Cached returns a fresh cached token without running anything: it
	// may be called while the host is still unverified.
	Cached(vault, env string) (envmap.Token, bool)
	// Token returns the token, running op if it must (which may ask for
	// Touch ID): it is called only once Dial has returned a connection.
	Token(ctx context.Context, vault, env string) (envmap.Token, error)
}

var _ TokenSource = (*envmap.Resolver)(nil)

// Plan is what one invocation will deliver, decided before any network
// traffic so that config mistakes fail first.
type Plan struct {
	Env       string // "" means no token is sent
	Vault     string // the admin vault, known once NeedVault has run
	Origin    string // where Env came from, for messages
	Require   bool   // a refused token is fatal (--require-env, RsshRequireEnv)
	Transport string // "env" or "lc"
	TTL       time.Duration
	// Forward keeps the token here (RsshForwardSecrets): no token in the
	// env requests; the host asks per reference on the agent channel.
	Forward bool
	none    bool // --env none: no token, and SetEnv's RSSH_ENV is not sent either
}

// PlanToken picks the environment: env (--env) wins, "none" disables, else
// RSSH_ENV in the winning SetEnv line. require is --require-env.
func PlanToken(cfg *config.Config, env string, require bool) (*Plan, error) {
	p := &Plan{Require: require || cfg.RequireEnv, Transport: cfg.TokenTransport, TTL: cfg.TokenTTL, Forward: cfg.ForwardSecrets}
	switch env {
	case "none":
		p.none = true
		return p, nil
	case "":
		for _, kv := range cfg.SetEnv {
			if v, ok := strings.CutPrefix(kv, EnvVar+"="); ok {
				p.Env, p.Origin = v, "SetEnv at "+cfg.SetEnvPos.String()
				if err := envmap.ValidName(v); err != nil {
					return nil, &config.Error{Pos: cfg.SetEnvPos, Msg: fmt.Sprintf(
						"invalid environment name %q in SetEnv %s=: want lowercase letters, digits, '-' and '_', starting with a letter or digit", v, EnvVar)}
				}
			}
		}
	default:
		p.Env, p.Origin = env, "--env"
		if err := envmap.ValidName(env); err != nil {
			return nil, fmt.Errorf("--env %q: %w", env, err)
		}
	}
	if p.Env == "" && p.Require {
		return nil, &hintError{err: fmt.Errorf("--require-env: no environment is mapped to %s", cfg.Host), hint: fmt.Sprintf("add 'SetEnv %s=<env>' to its Host block, or pass --env NAME", EnvVar)}
	}
	return p, nil
}

// needVault finds the admin vault, once it is known that a token will be
// sent (not for -G, -N or -W).
func (p *Plan) needVault(getenv func(string) string) error {
	if p.Env == "" {
		return nil
	}
	vault, err := envmap.VaultFromEnv(getenv)
	p.Vault = vault
	return err
}

// tokenFetch looks the token up in the cache alongside the handshake; only
// once the host has proved its identity may it run op.
type tokenFetch struct {
	plan   *Plan
	src    TokenSource // set by the goroutine before cached is sent on
	cached chan cacheResult
}

type cacheResult struct {
	tok envmap.Token
	ok  bool
}

// startTokenFetch opens the token source and looks in its cache, in the
// background; nil when no token is planned.
func startTokenFetch(plan *Plan, open func(ttl time.Duration) TokenSource, log *slog.Logger) *tokenFetch {
	if plan == nil || plan.Env == "" {
		return nil
	}
	f := &tokenFetch{plan: plan, cached: make(chan cacheResult, 1)}
	crash.Go(func() {
		// Opening the keychain (D-Bus on Linux) costs a few ms: overlap it
		// with the TCP and SSH handshakes.
		f.src = open(plan.TTL)
		tok, ok := f.src.Cached(plan.Vault, plan.Env)
		f.cached <- cacheResult{tok, ok}
	})
	return f
}

// token returns the token; call it only after the host key is verified.
func (f *tokenFetch) token(ctx context.Context) (envmap.Token, error) {
	r := <-f.cached
	if r.ok {
		return r.tok, nil
	}
	return f.src.Token(ctx, f.plan.Vault, f.plan.Env)
}

// abandon wipes a cached token that will not be sent (the connection failed).
func (f *tokenFetch) abandon() {
	if f == nil {
		return
	}
	crash.Go(func() {
		r := <-f.cached
		r.tok.Wipe()
	})
}

// tokenEnv is the env requests that carry the token, and the command
// preamble the "lc" transport needs to map its names back.
func tokenEnv(plan *Plan, tok envmap.Token) ([]sshproxy.EnvVar, string) {
	if plan.Transport == "lc" {
		return []sshproxy.EnvVar{
				{Name: LCTokenVar, Value: tok.Reveal(), Confirm: true},
				{Name: LCEnvVar, Value: []byte(plan.Env), Confirm: true},
			},
			// The remote shell expands the variable itself: the token is in
			// no process's argv, only in the environment.
			fmt.Sprintf(`export %s="$%s" %s="$%s"; unset %s %s; `, TokenVar, LCTokenVar, EnvVar, LCEnvVar, LCTokenVar, LCEnvVar)
	}
	return []sshproxy.EnvVar{
		{Name: TokenVar, Value: tok.Reveal(), Confirm: true},
		{Name: EnvVar, Value: []byte(plan.Env), Confirm: true},
	}, ""
}

// refusedHandler reports a server that did not accept the token: one line
// on stderr that names the fix, and the session goes on unless the token
// is required.
func refusedHandler(plan *Plan, host string, stderr io.Writer) func(string) error {
	reported := false
	return func(name string) error {
		if reported {
			return nil
		}
		reported = true
		fix := fmt.Sprintf("add 'AcceptEnv %s %s' to the server's sshd_config, or set 'RsshTokenTransport lc' for servers that accept LC_*", TokenVar, EnvVar)
		if plan.Transport == "lc" {
			fix = "add 'AcceptEnv LANG LC_*' to the server's sshd_config (Debian and Ubuntu ship it)"
		}
		if plan.Require {
			return &hintError{err: fmt.Errorf("%s refused %s (environment %s) and the token is required: not running the command", host, name, plan.Env), hint: fix}
		}
		fmt.Fprintf(stderr, "rssh: %s refused %s: the session runs without the %s token; to fix: %s\n", host, name, plan.Env, fix)
		return nil
	}
}

// sessionEnv is what OpenSSH sends before the command: the winning SetEnv
// line's variables, then the local variables SendEnv patterns match. rssh's
// own names never travel through SendEnv — a local token must not reach a
// host mapped to another environment, or to none — and RSSH_ENV from SetEnv
// gives way to the one rssh sends with the token (or to none, --env none).
func sessionEnv(cfg *config.Config, environ []string, plan *Plan) []sshproxy.EnvVar {
	dropSetEnvRSSHEnv := plan != nil && (plan.Env != "" || plan.none)
	var out []sshproxy.EnvVar
	for _, kv := range cfg.SetEnv {
		name, value, _ := strings.Cut(kv, "=")
		if dropSetEnvRSSHEnv && name == EnvVar {
			continue
		}
		out = append(out, sshproxy.EnvVar{Name: name, Value: []byte(value)})
	}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || ownVar(name) {
			continue
		}
		for _, pat := range cfg.SendEnv {
			if ok, _ := filepath.Match(pat, name); ok {
				out = append(out, sshproxy.EnvVar{Name: name, Value: []byte(value)})
				break
			}
		}
	}
	return out
}

// hintError is an error with the fix to print on a second line
// (rssh: hint: …); cmd/rssh finds it by its HintText method.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string    { return e.err.Error() }
func (e *hintError) Unwrap() error    { return e.err }
func (e *hintError) HintText() string { return e.hint }
