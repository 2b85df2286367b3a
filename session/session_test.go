package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/sshproxy"

	"github.com/rssh/rssh/internal/testenv"
)

// These tests run the session flow in-process against a real sshd started
// by the test. The token comes from a recording fake (tokens) or from the
// real envmap.Resolver running a fake op (testenv.FakeOp); the connection
// from the real sshproxy client, wrapped so that the test sees when Dial
// returned and which env requests each session was handed.

const adminVault = "Admin Vault"

// world is one test's server, key, known_hosts and ssh_config.
type world struct {
	t          *testing.T
	dir        string
	sshd       *testenv.SSHD
	user       string
	key        *testenv.Key
	knownHosts string
	config     string
}

// newWorld starts an sshd and writes an ssh_config with one Host block per
// entry of hosts (alias → extra lines), each pointing at that server.
func newWorld(t *testing.T, opts testenv.SSHDOptions, hosts map[string][]string) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	w.sshd = testenv.StartSSHD(t, opts)
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.sshd.Authorize(t, w.user, w.key)
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.setKnownHosts(w.sshd.KnownHostsLine() + "\n")
	var conf strings.Builder
	for alias, extra := range hosts {
		conf.WriteString(w.sshd.HostBlock(alias, w.user, w.key.Path, w.knownHosts, extra...) + "\n")
	}
	w.config = filepath.Join(w.dir, "ssh_config")
	if err := os.WriteFile(w.config, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) setKnownHosts(content string) {
	w.t.Helper()
	if err := os.WriteFile(w.knownHosts, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// resolve is config.Resolve for host from the world's ssh_config; options
// are command-line lines ("Keyword value").
func (w *world) resolve(host string, options ...string) *config.Config {
	w.t.Helper()
	cfg, err := config.Resolve(config.Request{Host: host, Options: options, ConfigFile: w.config, HasCommand: true})
	if err != nil {
		w.t.Fatalf("resolving %s: %v", host, err)
	}
	return cfg
}

// recorder sees the flow from outside: when Dial returned, when the token
// source was asked, and the env requests each session was handed.
type recorder struct {
	mu     sync.Mutex
	events []string
	envs   [][]sshproxy.EnvVar
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// Env is what the sessions were handed, as NAME=VALUE lines.
func (r *recorder) Env() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, env := range r.envs {
		for _, v := range env {
			out = append(out, v.Name+"="+string(v.Value))
		}
	}
	return out
}

// recDialer is the seam as a shared connection would use it: a Dialer
// whose Conn records what Run is handed and passes it on.
type recDialer struct {
	Dialer
	r *recorder
}

func (d recDialer) Dial(ctx context.Context, cfg *config.Config, o DialOptions) (Conn, error) {
	c, err := d.Dialer.Dial(ctx, cfg, o)
	if err != nil {
		d.r.add("dial failed")
		return nil, err
	}
	d.r.add(fmt.Sprintf("dialled token=%v", o.Token))
	return recConn{c, d.r}, nil
}

type recConn struct {
	Conn
	r *recorder
}

func (c recConn) Run(ctx context.Context, s sshproxy.Session) (int, error) {
	c.r.mu.Lock()
	env := make([]sshproxy.EnvVar, len(s.Env))
	for i, v := range s.Env {
		env[i] = sshproxy.EnvVar{Name: v.Name, Value: append([]byte(nil), v.Value...), Confirm: v.Confirm}
	}
	c.r.envs = append(c.r.envs, env)
	c.r.mu.Unlock()
	c.r.add("run")
	return c.Conn.Run(ctx, s)
}

// fakeTokens is a TokenSource with an empty cache that hands out fixed
// tokens and records each ask.
type fakeTokens struct {
	r      *recorder
	tokens map[string]string
}

func (f *fakeTokens) Cached(vault, env string) (envmap.Token, bool) {
	f.r.add("cached " + env)
	return envmap.Token{}, false
}

func (f *fakeTokens) Token(ctx context.Context, vault, env string) (envmap.Token, error) {
	f.r.add("token " + env)
	tok, ok := f.tokens[env]
	if !ok {
		return envmap.Token{}, fmt.Errorf("no token for %s", env)
	}
	return envmap.NewToken([]byte(tok)), nil
}

func newFakeTokens(r *recorder) *fakeTokens {
	return &fakeTokens{r: r, tokens: map[string]string{
		"production": "ops_fake_production_token", "staging": "ops_fake_staging_token",
	}}
}

// opResolver is the real resolver with no cache, running the fake op.
func opResolver(t *testing.T, op *testenv.FakeOp) TokenSource {
	return &envmap.Resolver{
		Source:  envmap.NewOpSource(envmap.OpOptions{Path: op.Path, Environ: []string{"PATH=/usr/bin:/bin"}, Attempts: 1}),
		LockDir: t.TempDir(),
	}
}

// run is one invocation's plumbing: its output, and the deps to pass.
type run struct {
	stdout, stderr testenv.Buffer
	rec            recorder
	deps           Deps
}

// newRun builds Deps with environ as the local environment and tokens as
// the token source (nil: a fakeTokens on the run's recorder).
func (w *world) newRun(environ []string, tokens TokenSource) *run {
	r := &run{}
	if tokens == nil {
		tokens = newFakeTokens(&r.rec)
	}
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	getenv := func(k string) string { return vars[k] }
	log := slog.New(slog.DiscardHandler)
	cl := &sshproxy.Client{
		Resolve: func(host, user string, port int) (*config.Config, error) { return w.resolve(host), nil },
		Log:     log, Getenv: getenv, Stderr: &r.stderr,
	}
	r.deps = Deps{
		Dialer: recDialer{NewDialer(cl), &r.rec},
		Tokens: func(time.Duration) TokenSource { return tokens },
		Stdin:  strings.NewReader(""), Stdout: &r.stdout, Stderr: &r.stderr,
		Environ: environ, Getenv: getenv, Log: log,
	}
	return r
}

// baseEnv is a local environment that names the admin vault.
func baseEnv(more ...string) []string {
	return append([]string{"OP_SA_CREDENTIALS_VAULT=" + adminVault, "PATH=/usr/bin:/bin"}, more...)
}

func (w *world) plan(cfg *config.Config, env string, require bool) *Plan {
	w.t.Helper()
	p, err := PlanToken(cfg, env, require)
	if err != nil {
		w.t.Fatalf("PlanToken: %v", err)
	}
	return p
}

func contains(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

// Acceptance (a): an unknown or mismatched host key refuses the connection
// before the token source is asked for the token and before op runs; the
// cache alone may be looked at meanwhile. Once the host is verified, the
// token is fetched only after Dial returned.
func TestNoTokenBeforeHostKeyVerified(t *testing.T) {
	w := newWorld(t, testenv.SSHDOptions{}, map[string][]string{"prod": {"SetEnv RSSH_ENV=production"}})
	other := testenv.NewKey(t, w.dir, "other_host_key")
	for _, c := range []struct {
		name, knownHosts, want string
	}{
		{"mismatched", fmt.Sprintf("[127.0.0.1]:%d %s\n", w.sshd.Port, other.AuthorizedLine()), "host key"},
		{"unknown", "", "host key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w.setKnownHosts(c.knownHosts)
			cfg := w.resolve("prod")

			// An injected source: asked for nothing but the cache.
			r := w.newRun(baseEnv(), nil)
			status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{"true"}, Plan: w.plan(cfg, "", false)})
			if status != 255 || err == nil || !strings.Contains(strings.ToLower(err.Error()), c.want) {
				t.Fatalf("Run = %d, %v; want 255 and an error about the %s", status, err, c.want)
			}
			for _, e := range r.rec.Events() {
				if strings.HasPrefix(e, "token") || e == "run" {
					t.Errorf("%s happened though the host key was refused (events %q)", e, r.rec.Events())
				}
			}
			if !contains(r.rec.Events(), "dial failed") {
				t.Errorf("events %q: want the dial to fail", r.rec.Events())
			}

			// The real resolver with the fake op: op never runs.
			op := testenv.NewFakeOp(t, adminVault)
			r = w.newRun(baseEnv(), opResolver(t, op))
			status, err = Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{"true"}, Plan: w.plan(cfg, "", false)})
			if status != 255 || err == nil {
				t.Fatalf("Run = %d, %v; want 255 and an error", status, err)
			}
			if runs := op.Runs(t); len(runs) != 0 {
				t.Errorf("op ran before the host key was verified: %q", runs)
			}
			if strings.Contains(w.sshd.Log(), op.Tokens["production"]) {
				t.Error("the token reached the server")
			}
		})
	}

	t.Run("verified", func(t *testing.T) {
		w.setKnownHosts(w.sshd.KnownHostsLine() + "\n")
		cfg := w.resolve("prod")
		r := w.newRun(baseEnv(), nil)
		status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{`printf %s "$OP_SERVICE_ACCOUNT_TOKEN"`}, Plan: w.plan(cfg, "", false)})
		if status != 0 || err != nil || r.stdout.String() != "ops_fake_production_token" {
			t.Fatalf("Run = %d, %v, stdout %q, stderr %q", status, err, r.stdout.String(), r.stderr.String())
		}
		ev := r.rec.Events()
		dialled, token := -1, -1
		for i, e := range ev {
			switch e {
			case "dialled token=true":
				dialled = i
			case "token production":
				token = i
			}
		}
		if dialled < 0 || token < dialled {
			t.Errorf("events %q: want the token asked for after Dial returned (with DialOptions.Token)", ev)
		}

		op := testenv.NewFakeOp(t, adminVault)
		r = w.newRun(baseEnv(), opResolver(t, op))
		status, err = Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{`printf %s "$OP_SERVICE_ACCOUNT_TOKEN"`}, Plan: w.plan(cfg, "", false)})
		if status != 0 || err != nil || r.stdout.String() != op.Tokens["production"] {
			t.Fatalf("Run with op = %d, %v, stdout %q, stderr %q", status, err, r.stdout.String(), r.stderr.String())
		}
		if runs := op.Runs(t); len(runs) != 1 {
			t.Errorf("op ran %d times, want once: %q", len(runs), runs)
		}
		op.CheckArgv(t)
	})
}

// Acceptance (b): SendEnv never carries rssh's own names. With
// "SendEnv OP_* RSSH_* LC_*" and a token in the local environment, a host
// mapped to no environment gets no token, one mapped to another
// environment gets that environment's, and --env none sends neither; the
// other variables SendEnv names still go. The server accepts them all.
func TestTokenNeverBySendEnv(t *testing.T) {
	send := "SendEnv OP_* RSSH_* LC_* FOO"
	w := newWorld(t, testenv.SSHDOptions{Extra: "AcceptEnv OP_* RSSH_* LC_* FOO"}, map[string][]string{
		"plain":   {send},
		"staging": {"SetEnv RSSH_ENV=staging", send},
	})
	const local = "ops_LOCAL_token_never_to_be_sent"
	environ := baseEnv("OP_SERVICE_ACCOUNT_TOKEN="+local, "RSSH_ENV=production",
		"LC_RSSH_OP_SERVICE_ACCOUNT_TOKEN="+local, "LC_RSSH_ENV=production", "OP_ACCOUNT=acct", "FOO=bar")
	show := []string{`printf '%s|%s|%s|%s|%s|%s'`, `"$OP_SERVICE_ACCOUNT_TOKEN"`, `"$RSSH_ENV"`,
		`"$LC_RSSH_OP_SERVICE_ACCOUNT_TOKEN"`, `"$LC_RSSH_ENV"`, `"$OP_ACCOUNT"`, `"$FOO"`}
	for _, c := range []struct {
		host, env, want string
	}{
		{"plain", "", "||||acct|bar"},
		{"staging", "", "ops_fake_staging_token|staging|||acct|bar"},
		{"staging", "none", "||||acct|bar"},
	} {
		t.Run(c.host+"/"+c.env, func(t *testing.T) {
			cfg := w.resolve(c.host)
			r := w.newRun(environ, nil)
			status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: show, Plan: w.plan(cfg, c.env, false)})
			if status != 0 || err != nil || r.stdout.String() != c.want {
				t.Fatalf("Run = %d, %v: stdout %q, want %q (stderr %q)", status, err, r.stdout.String(), c.want, r.stderr.String())
			}
			for _, kv := range r.rec.Env() {
				if strings.Contains(kv, local) || kv == "RSSH_ENV=production" {
					t.Errorf("the session was handed %q", kv)
				}
			}
			if !contains(r.rec.Env(), "OP_ACCOUNT=acct") {
				t.Errorf("SendEnv OP_* did not send OP_ACCOUNT: %q", r.rec.Env())
			}
		})
	}
	if strings.Contains(w.sshd.Log(), local) {
		t.Error("the local token reached the server")
	}
}

// Acceptance (c): a server without AcceptEnv refuses the token: one line
// that names the fix, and the session goes on; with --require-env (or
// RsshRequireEnv yes) the command does not run and rssh exits 255.
func TestRefusedEnvExplained(t *testing.T) {
	w := newWorld(t, testenv.SSHDOptions{NoAcceptEnv: true}, map[string][]string{"prod": {"SetEnv RSSH_ENV=production"}})
	const line = "rssh: prod refused OP_SERVICE_ACCOUNT_TOKEN: the session runs without the production token; " +
		"to fix: add 'AcceptEnv OP_SERVICE_ACCOUNT_TOKEN RSSH_ENV' to the server's sshd_config, " +
		"or set 'RsshTokenTransport lc' for servers that accept LC_*\n"

	t.Run("goes on", func(t *testing.T) {
		cfg := w.resolve("prod")
		r := w.newRun(baseEnv(), nil)
		status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{"echo ran; exit 4"}, Plan: w.plan(cfg, "", false)})
		if status != 4 || err != nil || r.stdout.String() != "ran\n" {
			t.Fatalf("Run = %d, %v, stdout %q; want 4, the command run", status, err, r.stdout.String())
		}
		if got := r.stderr.String(); got != line {
			t.Errorf("stderr:\n%q\nwant:\n%q", got, line)
		}
	})

	for _, c := range []struct {
		name    string
		options []string
		require bool
	}{{"--require-env", nil, true}, {"RsshRequireEnv", []string{"RsshRequireEnv yes"}, false}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := w.resolve("prod", c.options...)
			r := w.newRun(baseEnv(), nil)
			status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{"echo ran"}, Plan: w.plan(cfg, "", c.require)})
			if status != 255 || err == nil || r.stdout.String() != "" {
				t.Fatalf("Run = %d, %v, stdout %q; want 255, an error, and no command run", status, err, r.stdout.String())
			}
			want := "prod refused OP_SERVICE_ACCOUNT_TOKEN (environment production) and the token is required: not running the command"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want it to contain %q", err, want)
			}
			var h interface{ HintText() string }
			if !errors.As(err, &h) || !strings.Contains(h.HintText(), "AcceptEnv OP_SERVICE_ACCOUNT_TOKEN RSSH_ENV") {
				t.Errorf("error %v: want a hint naming the AcceptEnv line", err)
			}
			if r.stderr.String() != "" {
				t.Errorf("stderr %q: the caller reports the error, nothing else is said", r.stderr.String())
			}
		})
	}
}

// RsshTokenTransport lc: a server that accepts only LC_* gets the token
// under the LC_ names, and the command's preamble maps them back, leaving
// no LC_RSSH_ variable behind.
func TestLCTransport(t *testing.T) {
	w := newWorld(t, testenv.SSHDOptions{NoAcceptEnv: true, Extra: "AcceptEnv LANG LC_*"},
		map[string][]string{"prod": {"SetEnv RSSH_ENV=production", "RsshTokenTransport lc"}})
	cfg := w.resolve("prod")
	r := w.newRun(baseEnv(), nil)
	status, err := Run(context.Background(), r.deps, Request{Config: cfg, Plan: w.plan(cfg, "", false),
		Command: []string{`printf '%s|%s|%s'`, `"$OP_SERVICE_ACCOUNT_TOKEN"`, `"$RSSH_ENV"`, `"${LC_RSSH_OP_SERVICE_ACCOUNT_TOKEN-unset}"`}})
	if want := "ops_fake_production_token|production|unset"; status != 0 || err != nil || r.stdout.String() != want {
		t.Fatalf("Run = %d, %v, stdout %q, want %q (stderr %q)", status, err, r.stdout.String(), want, r.stderr.String())
	}
	if !contains(r.rec.Env(), "LC_RSSH_ENV=production") {
		t.Errorf("env handed to the session: %q", r.rec.Env())
	}
}

// Acceptance (d): exit statuses as ssh's. A remote exit status comes back;
// a refused connection, a failed -W and a signal under -N (but SIGTERM)
// are 255.
func TestExitStatuses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	echo := testenv.StartEcho(t)
	w := newWorld(t, testenv.SSHDOptions{}, map[string][]string{"target": nil})

	t.Run("exit 3", func(t *testing.T) {
		cfg := w.resolve("target")
		r := w.newRun(baseEnv(), nil)
		status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{"echo", "out;", "echo", "err", ">&2;", "exit", "3"}})
		if status != 3 || err != nil || r.stdout.String() != "out\n" || r.stderr.String() != "err\n" {
			t.Fatalf("Run = %d, %v, stdout %q, stderr %q; want 3", status, err, r.stdout.String(), r.stderr.String())
		}
	})

	t.Run("remote signal", func(t *testing.T) {
		cfg := w.resolve("target")
		r := w.newRun(baseEnv(), nil)
		status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{"kill -9 $$"}})
		if status != 255 || err != nil {
			t.Fatalf("Run = %d, %v; want 255 and nothing said, as ssh", status, err)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		for name, mode := range map[string]func(Deps, *config.Config) (int, error){
			"session": func(d Deps, cfg *config.Config) (int, error) {
				return Run(context.Background(), d, Request{Config: cfg, Command: []string{"true"}, Plan: w.plan(cfg, "production", false)})
			},
			"-N": func(d Deps, cfg *config.Config) (int, error) { return Hold(context.Background(), d, cfg) },
			"-W": func(d Deps, cfg *config.Config) (int, error) {
				return Stdio(context.Background(), d, cfg, echo.Addr().String())
			},
		} {
			cfg := w.resolve("target", fmt.Sprintf("Port %d", closedPort)) // the command line wins
			r := w.newRun(baseEnv(), nil)
			status, err := mode(r.deps, cfg)
			if status != 255 || err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("%s: %d, %v; want 255 and connection refused", name, status, err)
			}
			for _, e := range r.rec.Events() {
				if strings.HasPrefix(e, "token") {
					t.Errorf("%s: the token was fetched for a connection that failed", name)
				}
			}
		}
	})

	t.Run("-W", func(t *testing.T) {
		cfg := w.resolve("target")
		r := w.newRun(baseEnv(), nil)
		r.deps.Stdin = strings.NewReader("hello through -W\n")
		detached := false
		r.deps.Detach = func() { detached = true }
		status, err := Stdio(context.Background(), r.deps, cfg, echo.Addr().String())
		if status != 0 || err != nil || r.stdout.String() != "hello through -W\n" {
			t.Fatalf("Stdio = %d, %v, stdout %q", status, err, r.stdout.String())
		}
		if !detached {
			t.Error("-f would never have detached")
		}
	})

	t.Run("-W refused", func(t *testing.T) {
		cfg := w.resolve("target")
		r := w.newRun(baseEnv(), nil)
		status, err := Stdio(context.Background(), r.deps, cfg, fmt.Sprintf("127.0.0.1:%d", closedPort))
		if status != 255 || err == nil || !strings.Contains(err.Error(), "stdio forwarding to 127.0.0.1:") {
			t.Fatalf("Stdio = %d, %v; want 255 and stdio forwarding failed", status, err)
		}
	})

	t.Run("-W bad target", func(t *testing.T) {
		cfg := w.resolve("target")
		r := w.newRun(baseEnv(), nil)
		status, err := Stdio(context.Background(), r.deps, cfg, "nocolon")
		if status != 255 || err == nil || err.Error() != "bad stdio forwarding specification 'nocolon': want host:port" {
			t.Fatalf("Stdio = %d, %v", status, err)
		}
		if ev := r.rec.Events(); len(ev) != 0 {
			t.Errorf("refused after connecting: %q", ev)
		}
	})

	// -N: held until a signal; SIGTERM is a clean end (0), as in ssh.
	for sig, want := range map[syscall.Signal]int{syscall.SIGTERM: 0, syscall.SIGINT: 255, syscall.SIGHUP: 255} {
		t.Run("-N "+sig.String(), func(t *testing.T) {
			cfg := w.resolve("target", "SessionType none")
			r := w.newRun(baseEnv(), nil)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			r.deps.Signals = func(taken func(os.Signal) bool) (context.Context, func()) { return ctx, func() { cancel(nil) } }
			// Held: connected, forwards up, where -f detaches. Now the signal.
			r.deps.Detach = func() { cancel(&Signalled{Signal: sig}) }
			status, err := Hold(context.Background(), r.deps, cfg)
			if status != want || err != nil {
				t.Fatalf("Hold = %d, %v; want %d", status, err, want)
			}
		})
	}
}

// A LocalCommand runs with the local environment less rssh's own names, so
// a token in it does not reach the command.
func TestLocalCommandEnvironment(t *testing.T) {
	w := newWorld(t, testenv.SSHDOptions{}, map[string][]string{"target": {
		"PermitLocalCommand yes",
		`LocalCommand echo "local:${OP_SERVICE_ACCOUNT_TOKEN-unset}|$FOO"`,
	}})
	cfg := w.resolve("target")
	r := w.newRun(baseEnv("OP_SERVICE_ACCOUNT_TOKEN=ops_local", "FOO=bar", "SHELL=/bin/sh"), nil)
	status, err := Run(context.Background(), r.deps, Request{Config: cfg, Command: []string{"echo remote"}})
	if status != 0 || err != nil || r.stdout.String() != "local:unset|bar\nremote\n" {
		t.Fatalf("Run = %d, %v, stdout %q", status, err, r.stdout.String())
	}
}

// Unit: what sessionEnv sends, SetEnv first then SendEnv's matches, never
// rssh's names, and RSSH_ENV from SetEnv only when no token (or --env
// none) replaces it.
func TestSessionEnv(t *testing.T) {
	cfg := &config.Config{SetEnv: []string{"A=1", "RSSH_ENV=staging"}, SendEnv: []string{"*"}}
	environ := []string{"B=2", "OP_SERVICE_ACCOUNT_TOKEN=x", "RSSH_ENV=y", "LC_RSSH_OP_SERVICE_ACCOUNT_TOKEN=x", "LC_RSSH_ENV=y", "noequals"}
	names := func(p *Plan) string {
		var out []string
		for _, v := range sessionEnv(cfg, environ, p) {
			out = append(out, v.Name+"="+string(v.Value))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		plan *Plan
		want string
	}{
		{nil, "A=1 RSSH_ENV=staging B=2"},
		{&Plan{}, "A=1 RSSH_ENV=staging B=2"},
		{&Plan{Env: "staging"}, "A=1 B=2"},
		{&Plan{none: true}, "A=1 B=2"},
	} {
		if got := names(c.plan); got != c.want {
			t.Errorf("plan %+v: %q, want %q", c.plan, got, c.want)
		}
	}
}
