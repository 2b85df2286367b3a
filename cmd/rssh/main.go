// Command rssh is a drop-in for OpenSSH's ssh that delivers a host's
// 1Password Service Account token into the remote session. main only wires:
// argv into a mode, the packages' dependencies, and the exit status.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/sshproxy"

	"github.com/rssh/rssh/internal/crash"
)

func main() {
	// A panic on this goroutine, as on every other rssh starts, ends with
	// one "rssh: internal error" line, the stack in a file, and exit 255.
	defer crash.Recover()
	os.Exit(run(os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr}, os.Getenv))
}

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// run is rssh minus the process: it returns the exit status.
func run(args []string, std stdio, getenv func(string) string) int {
	// rssh's own modes take a leading long option, so no host name can
	// shadow them (a host called "bridge" is still `rssh bridge`).
	if len(args) > 0 {
		switch args[0] {
		case "--bridge":
			return runBridge(args[1:], std, getenv)
		case "--token":
			return runToken(args[1:], std, getenv)
		case "--complete-hosts":
			return runCompleteHosts(args[1:], std, getenv)
		case "doctor":
			return runDoctor(args[1:], std, getenv)
		case "completion":
			// A command word in first position wins over a host of that
			// name, which stays reachable as user@completion or
			// rssh -- completion.
			return runCompletion(args[1:], std)
		case "secret":
			return runSecret(args[1:], std, getenv)
		case "shell-init":
			return runShellInit(args[1:], std, getenv)
		}
	}
	inv, err := parseArgs(args)
	if inv != nil {
		for _, w := range inv.warnings {
			fmt.Fprintln(std.err, w)
		}
	}
	if err != nil {
		fail(std.err, err)
		var u *usageError
		if errors.As(err, &u) {
			fmt.Fprintln(std.err, usage)
		}
		return sshproxy.ExitFailure
	}
	switch inv.mode {
	case modeHelp:
		fmt.Fprintln(std.out, usage)
		return 0
	case modeVersion:
		fmt.Fprintln(std.err, versionString())
		return 0
	case modeQuery:
		return runQuery(inv.query, std)
	}
	cfg, err := config.Resolve(config.Request{Host: inv.host, Options: inv.options, ConfigFile: inv.configFile, HasCommand: len(inv.command) > 0, StdioForward: inv.stdioTarget != ""})
	if err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	if cfg.ForkAfterAuthentication && len(inv.command) == 0 && cfg.RemoteCommand == "" && cfg.SessionType != "none" {
		fail(std.err, errNoCommandToFork)
		return sshproxy.ExitFailure
	}
	plan, err := planToken(cfg, inv, getenv)
	if err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	bg := takeDetacher(cfg.ForkAfterAuthentication, getenv)
	if cfg.ForkAfterAuthentication && bg == nil && inv.mode != modeDumpConfig {
		return runInBackground(args, std)
	}
	if inv.mode == modeDumpConfig {
		if err := cfg.Dump(std.out); err != nil {
			fail(std.err, err)
			return sshproxy.ExitFailure
		}
		// -G prints what ssh -G prints, so its output reads back as a
		// config by ssh and by rssh; rssh's own settings only with --rssh,
		// after ssh's lines.
		if !inv.dumpOwn {
			return 0
		}
		env := plan.env
		if env == "" {
			env = "none"
		}
		fmt.Fprintf(std.out, "rsshenv %s\nrsshrequireenv %s\nrsshtokentransport %s\n", env, yesNo(plan.require), plan.transport)
		return 0
	}

	logOut := std.err
	if inv.logFile != "" {
		f, err := os.OpenFile(inv.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fail(std.err, fmt.Errorf("couldn't open logfile %s: %w", inv.logFile, err))
			return sshproxy.ExitFailure
		}
		defer f.Close()
		logOut = f
	}
	level := newLogLevel(cfg.LogLevel)
	log := slog.New(newSSHLogHandler(logOut, level))

	if err := checkSession(inv, cfg); err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}

	cl := newClient(resolveHop(inv.configFile, false), log, getenv, std.err)

	hasCommand := len(inv.command) > 0 || cfg.RemoteCommand != ""
	stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
	wantTTY, notice := sshproxy.WantTTY(cfg.RequestTTY, hasCommand, cfg.SessionType == "none", stdinTTY, cfg.StdinNull)
	if notice {
		log.Info(sshproxy.PTYNotice)
	}

	var stdioHost string
	var stdioPort int
	if inv.stdioTarget != "" {
		// As ssh: a bad -W is refused before connecting.
		if stdioHost, stdioPort, err = splitHostPort(inv.stdioTarget); err != nil {
			fail(std.err, err)
			return sshproxy.ExitFailure
		}
	}

	ctx, early := earlySignals()
	defer early.stop()
	var fetch *tokenFetch
	if inv.stdioTarget == "" && cfg.SessionType != "none" {
		if err := plan.needVault(getenv); err != nil {
			fail(std.err, err)
			return sshproxy.ExitFailure
		}
		fetch = startTokenFetch(plan, log)
	}
	conn, err := cl.Dial(ctx, cfg)
	if err != nil {
		// Nothing was sent and op never ran: the host did not prove itself.
		fetch.abandon()
		early.dieIfSignalled()
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	defer conn.Close()
	conn.KeepAlive(cfg.ServerAliveInterval, cfg.ServerAliveCountMax)

	var tty *sshproxy.Terminal
	msgs := std.err
	if wantTTY {
		tty = sshproxy.OpenTerminal(os.Stdin)
		// The terminal comes back on every way out of run, a panic
		// included; os.Exit in main runs after these.
		defer tty.Restore()
		msgs = tty.Messages(std.err)
	}

	// From here a signal ends the session and rssh exits 255, as ssh does
	// (0 for SIGTERM under -N); signals the parent ignores stay ignored.
	// A ^C typed at the ~C prompt only closes the prompt.
	sigCtx, sig := notifySignals(context.Background(), func(v os.Signal) bool {
		return v == syscall.SIGINT && tty != nil && tty.Interrupt()
	})
	defer sig.stop()

	if inv.stdioTarget != "" {
		done := make(chan error, 1)
		bg.detach()
		crash.Go(func() { done <- conn.Forward(stdioHost, stdioPort, std.in, std.out) })
		select {
		case err = <-done:
		case <-sigCtx.Done():
			return sshproxy.ExitFailure
		}
		if err != nil {
			fail(std.err, err)
			return sshproxy.ExitFailure
		}
		return 0
	}

	agentSock := ""
	if cfg.ForwardAgent != "no" {
		agentSock = cl.AgentForwardSocket(cfg)
		conn.ServeAgent(agentSock)
	}
	fwd, err := conn.StartForwards(sshproxy.Forwards{
		Local:         cfg.LocalForwards,
		Remote:        cfg.RemoteForwards,
		Dynamic:       cfg.DynamicForwards,
		GatewayPorts:  cfg.GatewayPorts,
		ExitOnFailure: cfg.ExitOnForwardFailure,
		Log:           log,
		Warn:          msgs,
	})
	if err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	defer fwd.Close()

	// LocalCommand: connected, forwards up, no session yet (as ssh).
	if err := runLocalCommand(cfg, std.in, std.out, msgs, getenv, log); err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}

	if cfg.SessionType == "none" {
		// -N: hold the connection (and the forwards) until the server or
		// a signal ends it.
		bg.detach()
		select {
		case <-conn.Done():
			if lost := conn.Lost(0); lost != nil {
				fail(std.err, lost)
			}
			return sshproxy.ExitFailure
		case <-sigCtx.Done():
			if sig.received() == syscall.SIGTERM {
				return 0
			}
			return sshproxy.ExitFailure
		}
	}

	command := strings.Join(inv.command, " ")
	if command == "" {
		command = cfg.RemoteCommand
	}
	var stdin io.Reader = std.in
	if cfg.StdinNull {
		stdin = nil
	}
	env := sessionEnv(cfg, os.Environ(), plan.env != "" || inv.env == "none")
	if fetch != nil {
		// The host key is verified and we are authenticated: only now may
		// op run (it may ask for Touch ID) and the token leave this process.
		tok, err := fetch.token(ctx)
		if err != nil {
			early.dieIfSignalled()
			fail(std.err, err)
			return sshproxy.ExitFailure
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
		Stdout:       std.out,
		Stderr:       msgs,
		ForwardAgent: cfg.ForwardAgent != "no",
		Refused:      refusedHandler(plan, cfg.Host, std),
	}
	if wantTTY {
		esc := escapeChar(cfg.EscapeChar)
		sess.PTY = &sshproxy.PTY{
			Term: getenv("TERM"), Terminal: tty, EscapeChar: esc,
			CommandLine: cfg.EnableEscapeCommandline, Forwarding: fwd,
		}
		if logOut == std.err {
			sess.PTY.Verbosity = level.Step
		}
	}
	bg.detach() // -f: authenticated, forwards up, token fetched: as ssh, fork here
	status, err := conn.Run(sigCtx, sess)
	if tty != nil {
		tty.Restore()
	}
	switch {
	case sigCtx.Err() != nil:
		// Killed by a signal: quiet, as ssh is below -v.
		return sshproxy.ExitFailure
	case err != nil:
		fail(std.err, err)
	case wantTTY && level.atLeastInfo():
		fmt.Fprintf(std.err, "Connection to %s closed.\r\n", cfg.Hostname)
	}
	return status
}

// signals is the signal that ended the session, if any.
type signals struct {
	ch   chan os.Signal
	got  chan os.Signal
	stop func()
}

func (s *signals) received() os.Signal {
	select {
	case v := <-s.got:
		s.got <- v
		return v
	default:
		return nil
	}
}

// notifySignals cancels the returned context on SIGINT, SIGTERM, SIGHUP or
// SIGQUIT, leaving alone any the parent set to be ignored (as ssh does, so
// `nohup` and background jobs keep working), and any that taken says it
// has dealt with.
func notifySignals(parent context.Context, taken func(os.Signal) bool) (context.Context, *signals) {
	ctx, cancel := context.WithCancel(parent)
	s := &signals{ch: make(chan os.Signal, 1), got: make(chan os.Signal, 1)}
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		if !signal.Ignored(sig) {
			signal.Notify(s.ch, sig)
		}
	}
	done := make(chan struct{})
	crash.Go(func() {
		for {
			select {
			case v := <-s.ch:
				if taken(v) {
					continue
				}
				s.got <- v
				cancel()
				return
			case <-done:
				return
			}
		}
	})
	s.stop = func() {
		signal.Stop(s.ch)
		close(done)
		cancel()
	}
	return ctx, s
}

// earlySignalState remembers a SIGTERM or SIGHUP that arrives while rssh
// connects and authenticates.
type earlySignalState struct {
	ch   chan os.Signal
	got  atomic.Value // os.Signal
	stop func()
}

// earlySignals cancels the returned context on SIGTERM or SIGHUP while rssh
// connects. ssh has no handler for them then and dies by the signal, so its
// parent sees a signal death (a shell shows 143) and nothing is printed:
// dieIfSignalled does the same instead of reporting "context canceled".
func earlySignals() (context.Context, *earlySignalState) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &earlySignalState{ch: make(chan os.Signal, 1)}
	signal.Notify(s.ch, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	crash.Go(func() {
		select {
		case v := <-s.ch:
			s.got.Store(v)
			cancel()
		case <-done:
		}
	})
	s.stop = func() {
		signal.Stop(s.ch)
		close(done)
		cancel()
	}
	return ctx, s
}

// dieIfSignalled ends rssh by the signal that cancelled the connection, with
// the default action restored, as ssh ends.
func (s *earlySignalState) dieIfSignalled() {
	v, ok := s.got.Load().(os.Signal)
	if !ok {
		return
	}
	sig := v.(syscall.Signal)
	signal.Reset(sig)
	syscall.Kill(os.Getpid(), sig)
	// The signal is on its way to some thread of this process; should it
	// not end the process at once, exit with the status a shell would show.
	time.Sleep(time.Second)
	os.Exit(128 + int(sig))
}

// checkSession rejects what cannot work before any connection is made.
func checkSession(inv *invocation, cfg *config.Config) error {
	if len(inv.command) > 0 && cfg.RemoteCommand != "" {
		return errors.New("cannot execute command-line and remote command")
	}
	return nil
}

// sessionEnv is what OpenSSH sends before the command: the winning SetEnv
// line's variables, then the local variables SendEnv patterns match. rssh's
// own names never travel through SendEnv — a local token must not reach a
// host mapped to another environment, or to none — and RSSH_ENV from SetEnv
// gives way to the one rssh sends with the token.
func sessionEnv(cfg *config.Config, environ []string, sendingToken bool) []sshproxy.EnvVar {
	var out []sshproxy.EnvVar
	for _, kv := range cfg.SetEnv {
		name, value, _ := strings.Cut(kv, "=")
		if sendingToken && name == envVar {
			continue
		}
		out = append(out, sshproxy.EnvVar{Name: name, Value: []byte(value)})
	}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch name {
		case tokenVar, envVar, lcTokenVar, lcEnvVar:
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

// escapeChar reads EscapeChar as OpenSSH does: "none", one character, or
// "^X" for a control character.
func escapeChar(v string) int {
	switch {
	case v == "none" || v == "":
		return sshproxy.EscapeNone
	case len(v) == 2 && v[0] == '^':
		return int(v[1] & 0x1f)
	}
	return int(v[0])
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
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

// fail prints an error in rssh's one voice, with a hint line when the error
// knows the fix.
func fail(w io.Writer, err error) {
	// Bad config lines as ssh reports them: each, then the count.
	var bad *config.BadOptions
	if errors.As(err, &bad) {
		for _, e := range bad.Errs {
			fmt.Fprintf(w, "rssh: %v\n", e)
		}
		if t := bad.Terminating(); t != "" {
			fmt.Fprintf(w, "rssh: %s\n", t)
		}
		return
	}
	fmt.Fprintf(w, "rssh: %v\n", err)
	var h interface{ HintText() string }
	if errors.As(err, &h) && h.HintText() != "" {
		fmt.Fprintf(w, "rssh: hint: %s\n", h.HintText())
	}
}

// resolveHop resolves each host of a ProxyJump chain from the same config
// file, with the user and port its jump spec gave. skipRelay drops a
// ProxyCommand that would run `rssh --bridge` itself (the relay resolving
// its own hops must not recurse into itself).
func resolveHop(configFile string, skipRelay bool) func(host, user string, port int) (*config.Config, error) {
	return func(host, user string, port int) (*config.Config, error) {
		var opts []string
		if user != "" {
			opts = append(opts, "User "+quote(user))
		}
		if port != 0 {
			opts = append(opts, "Port "+strconv.Itoa(port))
		}
		c, err := config.Resolve(config.Request{Host: host, Options: opts, ConfigFile: configFile})
		if err == nil && skipRelay && c.ProxyCommand != "" && isBridgeRelay(c.ProxyCommand) {
			c.ProxyCommand = ""
		}
		return c, err
	}
}

// newClient is the SSH client of a session and of the relay alike; it asks
// for passphrases on the controlling terminal when there is one.
func newClient(resolve func(host, user string, port int) (*config.Config, error), log *slog.Logger, getenv func(string) string, stderr io.Writer) *sshproxy.Client {
	cl := &sshproxy.Client{Resolve: resolve, Log: log, Getenv: getenv, Stderr: stderr}
	if p, ok := sshproxy.OpenTTYPrompter(); ok {
		cl.Prompt = p
	}
	return cl
}
