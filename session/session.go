// Package session is rssh's session flow, from a resolved config to an exit
// status: it plans the token, dials (the host key verified and the user
// authenticated before anything else happens), fetches the token, sets up
// agent forwarding, the forwards and LocalCommand, and runs one of three
// modes — Run (an exec, shell or subsystem session, with a PTY or not),
// Hold (-N) or Stdio (-W).
//
// It takes every dependency from its caller (Deps): the connection comes
// from a Dialer as a Conn, so that a shared connection (a ControlMaster)
// can stand in for a fresh one; the token from a TokenSource; stdio, the
// environment, the log and the signals from cmd/rssh. It reads nothing from
// the process itself. It does not parse argv, resolve config, or decide how
// the process ends: that stays in cmd/rssh.
//
// The token rule, in one place (Run): the cache may be looked at while the
// handshake runs, but op runs and the token leaves this process only after
// Dialer.Dial has returned, that is after the host key is verified and the
// user authenticated; the token goes only in the env requests Run computes
// and hands to Conn.Run, never through SendEnv.
package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/sshproxy"
)

// Conn is what the session flow needs of an authenticated connection.
// *sshproxy.Conn is the one rssh dials itself; a connection through a
// ControlMaster socket is another.
type Conn interface {
	// Run runs one session and returns ssh's exit status for it. The
	// env requests in s.Env are all the session sends: a shared
	// connection must deliver exactly those.
	Run(ctx context.Context, s sshproxy.Session) (int, error)
	// Forward relays stdin and stdout to host:port through the server (-W).
	Forward(host string, port int, stdin io.Reader, stdout io.Writer) error
	// StartForwards sets up -L, -R and -D; the Forwarding may be nil when
	// the connection cannot offer ~C (it then has nothing to cancel).
	StartForwards(fw sshproxy.Forwards) (*sshproxy.Forwarding, error)
	// ServeAgent answers the server's agent channels with the agent at socket.
	ServeAgent(socket string)
	// KeepAlive is ServerAliveInterval and ServerAliveCountMax.
	KeepAlive(interval time.Duration, countMax int)
	// Done is closed when the connection has ended.
	Done() <-chan struct{}
	// Lost says why the connection ended, if rssh did not end it.
	Lost(grace time.Duration) error
	Close() error
}

var _ Conn = (*sshproxy.Conn)(nil)

// Dialer makes the connection a session runs on.
type Dialer interface {
	// Dial returns a connection to cfg's destination only once its host
	// key is verified and the user authenticated: the token is fetched
	// after Dial returns, never before.
	Dial(ctx context.Context, cfg *config.Config, opts DialOptions) (Conn, error)
	// AgentForwardSocket is the local agent ForwardAgent forwards, "" for none.
	AgentForwardSocket(cfg *config.Config) string
}

// DialOptions is what a Dialer must know of the session before it picks a
// connection.
type DialOptions struct {
	// Token says the session will send a token in env requests. A shared
	// connection that cannot promise to deliver them as a fresh one would
	// (an OpenSSH master filters them through its own SendEnv) must not be
	// used then: the Dialer connects directly instead.
	Token bool
}

// NewDialer is the Dialer of rssh's own connections: cl dials, verifies
// the host key and authenticates.
func NewDialer(cl *sshproxy.Client) Dialer { return clientDialer{cl} }

type clientDialer struct{ cl *sshproxy.Client }

func (c clientDialer) Dial(ctx context.Context, cfg *config.Config, _ DialOptions) (Conn, error) {
	conn, err := c.cl.Dial(ctx, cfg)
	if err != nil {
		return nil, err // not a nil *sshproxy.Conn in a non-nil Conn
	}
	return conn, nil
}

func (c clientDialer) AgentForwardSocket(cfg *config.Config) string {
	return c.cl.AgentForwardSocket(cfg)
}

// Deps are everything a session takes from the process running it.
type Deps struct {
	Dialer Dialer
	// Tokens opens the token source (the cache and op, an
	// *envmap.Resolver in rssh); Run calls it once, alongside the
	// handshake, and only when a token is planned.
	Tokens func(ttl time.Duration) TokenSource

	Stdin io.Reader // what the remote command (or -W's target) reads
	// TTY is the file Stdin is, when it may be a terminal: RequestTTY's
	// rules ask whether it is one, and a PTY session puts it in raw mode.
	// nil: no terminal.
	TTY            *os.File
	Stdout, Stderr io.Writer

	Environ []string            // the local environment, for SendEnv and LocalCommand
	Getenv  func(string) string // for the vault, TERM and SHELL

	Log *slog.Logger // nil: discard
	// Verbosity steps LogLevel for ~v (more) and ~V and names the new
	// level; nil when the log does not go to the terminal (-E).
	Verbosity func(more bool) string
	// Informative reports whether LogLevel is INFO or more now: a PTY
	// session then ends with "Connection to HOST closed.". nil: it is.
	Informative func() bool

	// Signals watches for the signals that end a session (SIGINT,
	// SIGTERM, SIGHUP, SIGQUIT, less those the parent ignores): taken sees
	// each first and may keep it (^C at the ~C prompt). The context ends
	// on the first signal not taken, with a *Signalled cause; stop stops
	// watching. nil: no signals.
	Signals func(taken func(os.Signal) bool) (ctx context.Context, stop func())
	// Detach is called where ssh -f forks into the background: connected,
	// authenticated, forwards up and token fetched. nil: nothing to do.
	Detach func()
	// Confirm asks the person at this machine a yes/no question
	// (RsshSecretConfirm); nil when there is no way to ask.
	Confirm func(question string) (bool, error)
}

// Signalled is the cause of a Signals context: the signal that ended the
// session.
type Signalled struct{ Signal os.Signal }

func (s *Signalled) Error() string { return "killed by " + s.Signal.String() }

// Request is one session: exec, shell or subsystem.
type Request struct {
	Config *config.Config // SessionType is not "none" (that is Hold)
	// Command is the remote command's words, joined with spaces as ssh
	// joins them; none runs RemoteCommand, or else the login shell.
	Command []string
	// Plan is the token to deliver, from PlanToken; nil sends none.
	Plan *Plan
}

// Run connects and runs r's session. Like Hold and Stdio, it returns the
// exit status rssh ends with (the remote command's, or 255 as ssh) and an
// error for the caller to report in rssh's voice: nil when there is nothing
// to say (a session ended by a local signal exits 255 quietly, as ssh).
func Run(ctx context.Context, d Deps, r Request) (int, error) {
	cfg, log := r.Config, d.log()
	hasCommand := len(r.Command) > 0 || cfg.RemoteCommand != ""
	stdinTTY := d.TTY != nil && term.IsTerminal(int(d.TTY.Fd()))
	wantTTY, notice := sshproxy.WantTTY(cfg.RequestTTY, hasCommand, cfg.SessionType == "none", stdinTTY, cfg.StdinNull)
	if notice {
		log.Info(sshproxy.PTYNotice)
	}

	plan := r.Plan
	if plan == nil {
		plan = &Plan{}
	}
	if err := plan.needVault(d.getenv); err != nil {
		return sshproxy.ExitFailure, err
	}
	// Only the cache is looked at before Dial returns: op does not run.
	fetch := startTokenFetch(plan, d.Tokens, log)
	conn, err := d.Dialer.Dial(ctx, cfg, DialOptions{Token: fetch != nil})
	if err != nil {
		// Nothing was sent and op never ran: the host did not prove itself.
		fetch.abandon()
		return sshproxy.ExitFailure, err
	}
	defer conn.Close()
	conn.KeepAlive(cfg.ServerAliveInterval, cfg.ServerAliveCountMax)

	var tty *sshproxy.Terminal
	msgs := d.Stderr
	if wantTTY {
		tty = sshproxy.OpenTerminal(d.TTY)
		// The terminal comes back on every way out, a panic included.
		defer tty.Restore()
		msgs = tty.Messages(d.Stderr)
	}

	// From here a signal ends the session and rssh exits 255, as ssh does.
	// A ^C typed at the ~C prompt only closes the prompt.
	sigCtx, stopSignals := d.signals(func(v os.Signal) bool {
		return v == syscall.SIGINT && tty != nil && tty.Interrupt()
	})
	defer stopSignals()

	if plan.Forward {
		// Before setUp, so that the agent channels are the filter's.
		sf, err := startSecretForwarding(conn, d, cfg, plan, fetch)
		if err != nil {
			return sshproxy.ExitFailure, err
		}
		defer sf.close()
		fetch = nil // the filter fetches the token when the host first asks
	}
	fwd, err := setUp(conn, d, cfg, msgs)
	if err != nil {
		return sshproxy.ExitFailure, err
	}
	defer closeForwards(fwd)

	command := strings.Join(r.Command, " ")
	if command == "" {
		command = cfg.RemoteCommand
	}
	var stdin io.Reader = d.Stdin
	if cfg.StdinNull {
		stdin = nil
	}
	env := sessionEnv(cfg, d.Environ, plan)
	if plan.Forward && plan.Env != "" {
		// The environment's name, for shell-init's table; never a token.
		env = append(env, sshproxy.EnvVar{Name: EnvVar, Value: []byte(plan.Env)})
	}
	if fetch != nil {
		// The host key is verified and we are authenticated: only now may
		// op run (it may ask for Touch ID) and the token leave this process.
		tok, err := fetch.token(ctx)
		if err != nil {
			return sshproxy.ExitFailure, err
		}
		defer tok.Wipe()
		vars, preamble := tokenEnv(plan, tok)
		env = append(env, vars...)
		if preamble != "" && command != "" && cfg.SessionType != "subsystem" {
			command = preamble + command
		}
	}
	sess := sshproxy.Session{
		Command:      command,
		Subsystem:    cfg.SessionType == "subsystem",
		Env:          env,
		Stdin:        stdin,
		Stdout:       d.Stdout,
		Stderr:       msgs,
		ForwardAgent: cfg.ForwardAgent != "no" || plan.Forward,
		Refused:      refusedHandler(plan, cfg.Host, d.Stderr),
	}
	if wantTTY {
		sess.PTY = &sshproxy.PTY{
			Term: d.getenv("TERM"), Terminal: tty, EscapeChar: EscapeChar(cfg.EscapeChar),
			CommandLine: cfg.EnableEscapeCommandline, Forwarding: fwd, Verbosity: d.Verbosity,
		}
	}
	d.detach() // -f: authenticated, forwards up, token fetched: as ssh, fork here
	status, err := conn.Run(sigCtx, sess)
	if tty != nil {
		tty.Restore()
	}
	switch {
	case sigCtx.Err() != nil:
		// Killed by a signal: quiet, as ssh is below -v.
		return sshproxy.ExitFailure, nil
	case err != nil:
		return status, err
	case wantTTY && d.informative():
		fmt.Fprintf(d.Stderr, "Connection to %s closed.\r\n", cfg.Hostname)
	}
	return status, nil
}

// setUp is what follows authentication in -N and session modes, in ssh's
// order: agent forwarding, the forwards, then LocalCommand (connected,
// forwards up, no session yet).
func setUp(conn Conn, d Deps, cfg *config.Config, msgs io.Writer) (*sshproxy.Forwarding, error) {
	if cfg.ForwardAgent != "no" {
		conn.ServeAgent(d.Dialer.AgentForwardSocket(cfg))
	}
	fwd, err := conn.StartForwards(sshproxy.Forwards{
		Local:         cfg.LocalForwards,
		Remote:        cfg.RemoteForwards,
		Dynamic:       cfg.DynamicForwards,
		GatewayPorts:  cfg.GatewayPorts,
		ExitOnFailure: cfg.ExitOnForwardFailure,
		Log:           d.log(),
		Warn:          msgs,

		PermitRemoteOpen: cfg.PermitRemoteOpen,
	})
	if err != nil {
		return nil, err
	}
	if err := runLocalCommand(cfg, d, msgs); err != nil {
		closeForwards(fwd)
		return nil, err
	}
	return fwd, nil
}

func closeForwards(f *sshproxy.Forwarding) {
	if f != nil {
		f.Close()
	}
}

func (d *Deps) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

func (d *Deps) getenv(name string) string {
	if d.Getenv == nil {
		return ""
	}
	return d.Getenv(name)
}

func (d *Deps) informative() bool { return d.Informative == nil || d.Informative() }

func (d *Deps) detach() {
	if d.Detach != nil {
		d.Detach()
	}
}

func (d *Deps) signals(taken func(os.Signal) bool) (context.Context, func()) {
	if taken == nil {
		taken = func(os.Signal) bool { return false }
	}
	if d.Signals == nil {
		return context.WithCancel(context.Background())
	}
	return d.Signals(taken)
}

// EscapeChar reads EscapeChar as OpenSSH does: "none", one character, or
// "^X" for a control character.
func EscapeChar(v string) int {
	switch {
	case v == "none" || v == "":
		return sshproxy.EscapeNone
	case len(v) == 2 && v[0] == '^':
		return int(v[1] & 0x1f)
	}
	return int(v[0])
}
