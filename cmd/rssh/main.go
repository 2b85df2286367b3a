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
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/session"
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
	plan, err := session.PlanToken(cfg, inv.env, inv.requireEnv)
	if err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	// -O proxy runs the session itself, over the master's socket.
	if inv.muxCommand != "" && inv.mode != modeDumpConfig && (inv.muxCommand != "proxy" || controlOf(cfg).path == "") {
		return runMuxCommand(inv.muxCommand, cfg, std)
	}
	// A ControlPersist master this rssh started: it holds the connection
	// and serves the socket; the command and the forwards are its
	// parent's, asked for through the socket.
	muxChild := takeMuxChild(getenv)
	if muxChild != nil {
		inv.command, inv.stdioTarget = nil, ""
		cfg.SessionType = "none"
		cfg.LocalForwards, cfg.RemoteForwards, cfg.DynamicForwards = nil, nil, nil
		cfg.LocalCommand = ""
		cfg.ForkAfterAuthentication = false // it detaches on its own
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
		env := plan.Env
		if env == "" {
			env = "none"
		}
		fmt.Fprintf(std.out, "rsshenv %s\nrsshrequireenv %s\nrsshtokentransport %s\nrsshforwardsecrets %s\nrsshsecretconfirm %s\n",
			env, yesNo(plan.Require), plan.Transport, yesNo(plan.Forward), yesNo(cfg.SecretConfirm))
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
	if c := takeMuxConn(getenv); c != nil && muxChild != nil {
		cl.Predialed = c
	} else if c != nil {
		c.Close()
	}
	ctx, early := earlySignals()
	defer early.stop()
	d := session.Deps{
		Dialer: session.NewDialer(cl),
		Tokens: func(ttl time.Duration) session.TokenSource {
			return &envmap.Resolver{TTL: ttl, Log: log, Cache: envmap.OpenCache(log)}
		},
		Stdin: std.in, TTY: os.Stdin, Stdout: std.out, Stderr: std.err,
		Environ: os.Environ(), Getenv: getenv,
		Log: log, Informative: level.atLeastInfo,
		// Signals that the parent ignores stay ignored (nohup); a SIGTERM
		// under -N exits 0, as ssh.
		Signals: notifySignals,
		Detach:  bg.detach,
		Confirm: confirmer(getenv, os.Stdin),
	}
	if logOut == std.err {
		d.Verbosity = level.Step // ~v and ~V
	}
	if cs := controlOf(cfg); cs.path != "" {
		d.Dialer = &sharingDialer{inner: d.Dialer, cs: cs, cfg: cfg, plan: plan, log: log, stderr: std.err,
			getenv: getenv, tokens: d.Tokens, child: muxChild, args: args,
			proxy: inv.muxCommand == "proxy"}
	}
	var status int
	switch {
	case inv.stdioTarget != "":
		status, err = session.Stdio(ctx, d, cfg, inv.stdioTarget)
	case cfg.SessionType == "none":
		status, err = session.Hold(ctx, d, cfg)
	default:
		status, err = session.Run(ctx, d, session.Request{Config: cfg, Command: inv.command, Plan: plan})
	}
	var reported *exitError
	if errors.As(err, &reported) {
		return reported.code
	}
	if err != nil {
		// Cancelled by SIGTERM or SIGHUP while connecting: die by it, as ssh.
		early.dieIfSignalled()
		fail(std.err, err)
	}
	return status
}

// notifySignals cancels the returned context on SIGINT, SIGTERM, SIGHUP or
// SIGQUIT, with the signal as its cause (*session.Signalled), leaving alone
// any the parent set to be ignored (as ssh does, so `nohup` and background
// jobs keep working), and any that taken says it has dealt with.
func notifySignals(taken func(os.Signal) bool) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		if !signal.Ignored(sig) {
			signal.Notify(ch, sig)
		}
	}
	done := make(chan struct{})
	crash.Go(func() {
		for {
			select {
			case v := <-ch:
				if taken(v) {
					continue
				}
				cancel(&session.Signalled{Signal: v})
				return
			case <-done:
				return
			}
		}
	})
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
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

// escapeChar reads EscapeChar (-e) as the session does; args_test checks it.
var escapeChar = session.EscapeChar

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
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
// for passphrases on the controlling terminal when there is one, and takes
// a ProxyJump hop through the hop's live master when there is one.
func newClient(resolve func(host, user string, port int) (*config.Config, error), log *slog.Logger, getenv func(string) string, stderr io.Writer) *sshproxy.Client {
	cl := &sshproxy.Client{Resolve: resolve, Log: log, Getenv: getenv, Stderr: stderr,
		HopMux: hopMux(log, stderr)}
	if p, ok := sshproxy.OpenTTYPrompter(); ok {
		cl.Prompt = p
	}
	return cl
}
