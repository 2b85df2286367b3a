package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/sshproxy"

	"github.com/rssh/rssh/internal/crash"
)

// The names the remote side receives: DESIGN.md's contract.
const (
	tokenVar = "OP_SERVICE_ACCOUNT_TOKEN"
	envVar   = "RSSH_ENV"
	// The "lc" transport's names, which stock Debian/Ubuntu servers accept
	// through "AcceptEnv LANG LC_*".
	lcTokenVar = "LC_RSSH_OP_SERVICE_ACCOUNT_TOKEN"
	lcEnvVar   = "LC_RSSH_ENV"
)

// tokenPlan is what one invocation will deliver, decided before any
// network traffic so that config mistakes fail first.
type tokenPlan struct {
	env       string // "" means no token is sent
	vault     string
	origin    string // where env came from, for messages
	require   bool
	transport string // "env" or "lc"
	ttl       time.Duration
}

// planToken picks the environment: --env wins, "--env none" disables, else
// RSSH_ENV in the winning SetEnv line.
func planToken(cfg *config.Config, inv *invocation, getenv func(string) string) (*tokenPlan, error) {
	p := &tokenPlan{require: inv.requireEnv || cfg.RequireEnv, transport: cfg.TokenTransport, ttl: cfg.TokenTTL}
	switch inv.env {
	case "none":
		return p, nil
	case "":
		for _, kv := range cfg.SetEnv {
			if v, ok := strings.CutPrefix(kv, envVar+"="); ok {
				p.env, p.origin = v, "SetEnv at "+cfg.SetEnvPos.String()
				if err := envmap.ValidName(v); err != nil {
					return nil, &config.Error{Pos: cfg.SetEnvPos, Msg: fmt.Sprintf(
						"invalid environment name %q in SetEnv %s=: want lowercase letters, digits, '-' and '_', starting with a letter or digit", v, envVar)}
				}
			}
		}
	default:
		p.env, p.origin = inv.env, "--env"
		if err := envmap.ValidName(inv.env); err != nil {
			return nil, fmt.Errorf("--env %q: %w", inv.env, err)
		}
	}
	if p.env == "" {
		if p.require {
			return nil, &hintError{err: fmt.Errorf("--require-env: no environment is mapped to %s", cfg.Host), hint: fmt.Sprintf("add 'SetEnv %s=<env>' to its Host block, or pass --env NAME", envVar)}
		}
		return p, nil
	}
	return p, nil
}

// needVault finds the admin vault, once it is known that a token will be
// sent (not for -G, -N or -W).
func (p *tokenPlan) needVault(getenv func(string) string) error {
	if p.env == "" {
		return nil
	}
	vault, err := envmap.VaultFromEnv(getenv)
	p.vault = vault
	return err
}

// tokenFetch looks the token up in the cache alongside the handshake; only
// once the host has proved its identity may it run op.
type tokenFetch struct {
	plan     *tokenPlan
	resolver *envmap.Resolver
	cached   chan cacheResult
}

type cacheResult struct {
	tok envmap.Token
	ok  bool
}

func startTokenFetch(plan *tokenPlan, log *slog.Logger) *tokenFetch {
	if plan.env == "" {
		return nil
	}
	f := &tokenFetch{
		plan:     plan,
		resolver: &envmap.Resolver{TTL: plan.ttl, Log: log},
		cached:   make(chan cacheResult, 1),
	}
	crash.Go(func() {
		// Opening the keychain (D-Bus on Linux) costs a few ms: overlap it
		// with the TCP and SSH handshakes.
		f.resolver.Cache = envmap.OpenCache(log)
		tok, ok := f.resolver.Cached(plan.vault, plan.env)
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
	return f.resolver.Token(ctx, f.plan.vault, f.plan.env)
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
func tokenEnv(plan *tokenPlan, tok envmap.Token) ([]sshproxy.EnvVar, string) {
	if plan.transport == "lc" {
		return []sshproxy.EnvVar{
				{Name: lcTokenVar, Value: tok.Reveal(), Confirm: true},
				{Name: lcEnvVar, Value: []byte(plan.env), Confirm: true},
			},
			// The remote shell expands the variable itself: the token is in
			// no process's argv, only in the environment.
			fmt.Sprintf(`export %s="$%s" %s="$%s"; unset %s %s; `, tokenVar, lcTokenVar, envVar, lcEnvVar, lcTokenVar, lcEnvVar)
	}
	return []sshproxy.EnvVar{
		{Name: tokenVar, Value: tok.Reveal(), Confirm: true},
		{Name: envVar, Value: []byte(plan.env), Confirm: true},
	}, ""
}

// refusedHandler reports a server that did not accept the token: one line
// that names the fix, and the session goes on unless the token is required.
func refusedHandler(plan *tokenPlan, host string, std stdio) func(string) error {
	reported := false
	return func(name string) error {
		if reported {
			return nil
		}
		reported = true
		fix := fmt.Sprintf("add 'AcceptEnv %s %s' to the server's sshd_config, or set 'RsshTokenTransport lc' for servers that accept LC_*", tokenVar, envVar)
		if plan.transport == "lc" {
			fix = "add 'AcceptEnv LANG LC_*' to the server's sshd_config (Debian and Ubuntu ship it)"
		}
		if plan.require {
			return &hintError{err: fmt.Errorf("%s refused %s (environment %s) and the token is required: not running the command", host, name, plan.env), hint: fix}
		}
		fmt.Fprintf(std.err, "rssh: %s refused %s: the session runs without the %s token; to fix: %s\n", host, name, plan.env, fix)
		return nil
	}
}

// runToken is `rssh --token list|clear [ENV]|refresh ENV`: the token cache.
// Values are never printed; list shows environments and ages.
func runToken(args []string, std stdio, getenv func(string) string) int {
	log := slog.New(newSSHLogHandler(std.err, newLogLevel("ERROR")))
	if len(args) > 0 && args[0] == "-v" {
		log = slog.New(newSSHLogHandler(std.err, newLogLevel("DEBUG1")))
		args = args[1:]
	}
	if len(args) == 0 {
		fail(std.err, &hintError{err: errors.New("--token needs a command"), hint: "rssh --token list | clear [ENV] | refresh ENV"})
		return sshproxy.ExitFailure
	}
	r := &envmap.Resolver{Cache: envmap.OpenCache(log), Log: log}
	cmd, rest := args[0], args[1:]
	var err error
	switch {
	case cmd == "list" && len(rest) == 0:
		err = listTokens(r, std)
	case cmd == "clear" && len(rest) <= 1:
		vault, env := "", ""
		if len(rest) == 1 {
			env = rest[0]
			if err = envmap.ValidName(env); err == nil {
				vault, err = envmap.VaultFromEnv(getenv)
			}
		}
		if err == nil {
			err = r.Clear(vault, env)
		}
	case cmd == "refresh" && len(rest) == 1:
		var vault string
		if err = envmap.ValidName(rest[0]); err == nil {
			vault, err = envmap.VaultFromEnv(getenv)
		}
		if err == nil {
			var tok envmap.Token
			tok, err = r.Refresh(context.Background(), vault, rest[0])
			tok.Wipe()
		}
	default:
		err = &hintError{err: fmt.Errorf("--token %s: unknown command or wrong arguments", strings.Join(args, " ")), hint: "rssh --token list | clear [ENV] | refresh ENV"}
	}
	if err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	return 0
}

func listTokens(r *envmap.Resolver, std stdio) error {
	entries, err := r.List()
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "cache: %s\n", r.Cache)
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tVAULT\tAGE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Env, e.Vault, time.Since(e.Fetched).Round(time.Second))
	}
	return tw.Flush()
}
