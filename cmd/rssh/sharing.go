package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/mux"
	"github.com/rssh/rssh/session"
	"github.com/rssh/rssh/sshproxy"
)

// Connection sharing (ControlMaster, ControlPath, ControlPersist, -M, -S,
// -O) over OpenSSH's mux protocol: rssh is a client of any master, its
// own or OpenSSH's, and a master OpenSSH's clients can use.

// The HELLO extensions an rssh master offers: the destination it serves
// and the environment whose token its sessions get. OpenSSH's clients
// ignore them; an rssh client uses a master only when they match.
const (
	extDest = "dest@rssh"
	extEnv  = "env@rssh"
)

// muxMasterFDEnv names, in a ControlPersist master started by rssh, the
// descriptor on which it says it is listening.
const muxMasterFDEnv = "RSSH_MUX_MASTER_FD"

// muxMasterConnEnv names, in that master, the descriptor of the TCP
// connection its parent made to the destination while it started: the
// server starts its side (sshd execs itself for each connection) while
// the new rssh starts, instead of after.
const muxMasterConnEnv = "RSSH_MUX_MASTER_CONN_FD"

// controlSettings are ControlMaster, ControlPath and ControlPersist as -G
// prints them (the path expanded).
type controlSettings struct {
	master  string        // "false", "true", "auto", "ask", "autoask"
	path    string        // "" for none
	persist time.Duration // 0: no; <0: yes (forever)
}

func controlOf(cfg *config.Config) controlSettings {
	var b bytes.Buffer
	cfg.Dump(&b)
	cs := controlSettings{master: "false"}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "controlmaster":
			cs.master = v
		case "controlpath":
			if v != "none" {
				cs.path = v
			}
		case "controlpersist":
			switch v {
			case "no":
			case "yes":
				cs.persist = -1
			default:
				n, _ := strconv.Atoi(v)
				cs.persist = time.Duration(n) * time.Second
			}
		}
	}
	return cs
}

func destOf(cfg *config.Config) string {
	return fmt.Sprintf("%s@%s:%d", cfg.User, cfg.Hostname, cfg.Port)
}

// runMuxCommand is -O: check, exit, stop, forward, cancel.
func runMuxCommand(cmd string, cfg *config.Config, std stdio) int {
	cs := controlOf(cfg)
	if cs.path == "" {
		fail(std.err, errors.New(`no ControlPath specified for "-O" command`))
		return sshproxy.ExitFailure
	}
	c, err := mux.Dial(cs.path, cfg.ConnectTimeout)
	if err != nil {
		var pe *mux.PathError
		if errors.As(err, &pe) && (errors.Is(err, mux.ErrNoMaster) || errors.Is(err, mux.ErrStale)) {
			err = fmt.Errorf("control socket connect(%s): %s", cs.path, errnoWords(pe.Err))
		}
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	defer c.Close()
	quiet := strings.EqualFold(cfg.LogLevel, "QUIET")
	switch cmd {
	case "check":
		pid, err := c.AliveCheck()
		if err != nil {
			fail(std.err, fmt.Errorf("master alive check failed: %w", err))
			return sshproxy.ExitFailure
		}
		fmt.Fprintf(std.err, "Master running (pid=%d)\r\n", pid)
	case "exit":
		if err := c.Terminate(10 * time.Second); err != nil {
			fail(std.err, fmt.Errorf("termination request failed: %w", err))
			return sshproxy.ExitFailure
		}
		if !quiet {
			fmt.Fprint(std.err, "Exit request sent.\r\n")
		}
	case "stop":
		if err := c.StopListening(); err != nil {
			fail(std.err, fmt.Errorf("stop listening request failed: %w", err))
			return sshproxy.ExitFailure
		}
		if !quiet {
			fmt.Fprint(std.err, "Stop listening request sent.\r\n")
		}
	case "forward", "cancel":
		status := 0
		for _, g := range []struct {
			kind  config.ForwardKind
			specs []string
		}{{config.LocalForward, cfg.LocalForwards}, {config.DynamicForward, cfg.DynamicForwards}, {config.RemoteForward, cfg.RemoteForwards}} {
			for _, spec := range g.specs {
				f, err := config.ParseForward(spec, g.kind)
				if err != nil {
					fail(std.err, err)
					return sshproxy.ExitFailure
				}
				mf := mux.MuxForward(g.kind, f)
				if cmd == "cancel" {
					if err := c.CloseForward(mf); err != nil {
						fail(std.err, fmt.Errorf("master cancel forward request failed: %w", err))
						status = sshproxy.ExitFailure
					}
					continue
				}
				port, err := c.OpenForward(mf)
				if err != nil {
					fail(std.err, fmt.Errorf("master forward request failed: %w", err))
					return sshproxy.ExitFailure
				}
				if port != 0 {
					fmt.Fprintf(std.out, "%d\n", port)
				}
			}
		}
		if cmd == "cancel" {
			return 0 // as ssh: a failed cancel is reported, the exit is 0
		}
		return status
	default:
		fail(std.err, fmt.Errorf("-O %s is not supported by rssh", cmd))
		return sshproxy.ExitFailure
	}
	return 0
}

func errnoWords(err error) string {
	switch {
	case errors.Is(err, mux.ErrNoMaster):
		return "No such file or directory"
	case errors.Is(err, mux.ErrStale):
		return "Connection refused"
	}
	return err.Error()
}

// sharingDialer is the session flow's Dialer when a ControlPath is set: it
// goes through a live master when it may, becomes one when it should, and
// otherwise dials directly.
type sharingDialer struct {
	inner  session.Dialer
	cs     controlSettings
	cfg    *config.Config
	plan   *session.Plan
	log    *slog.Logger
	stderr io.Writer
	getenv func(string) string
	tokens func(ttl time.Duration) session.TokenSource
	// child is set in a ControlPersist master rssh started itself.
	child *os.File
	args  []string // argv, to start that master
	// proxy is -O proxy: the session runs over the master's socket in
	// proxy mode, with this process's own channels and requests.
	proxy bool
}

func (d *sharingDialer) AgentForwardSocket(cfg *config.Config) string {
	return d.inner.AgentForwardSocket(cfg)
}

func (d *sharingDialer) planEnv() string {
	if d.plan == nil {
		return ""
	}
	return d.plan.Env
}

// useMaster returns a Conn through the master at the ControlPath, or why
// not: no master (nil error and nil Conn), or a master this session must
// not use (an error to say at -v).
func (d *sharingDialer) useMaster(opts session.DialOptions) (session.Conn, error, bool) {
	c, err := mux.Dial(d.cs.path, d.cfg.ConnectTimeout)
	if err != nil {
		if errors.Is(err, mux.ErrNoMaster) {
			return nil, nil, false
		}
		if errors.Is(err, mux.ErrStale) {
			if d.cs.master == "false" {
				// As ssh: said, left in place, and the connection is direct.
				fmt.Fprintf(d.stderr, "rssh: control socket connect(%s): Connection refused\n", d.cs.path)
			} else {
				d.log.Debug(fmt.Sprintf("Stale control socket %s", d.cs.path))
			}
			return nil, nil, true
		}
		return nil, err, false
	}
	used := false
	defer func() {
		if !used {
			c.Close()
		}
	}()
	if dest, ok := c.Extension(extDest); ok && dest != destOf(d.cfg) {
		return nil, fmt.Errorf("the master at %s serves %s, not %s", d.cs.path, dest, destOf(d.cfg)), false
	}
	env, isRSSH := c.Extension(extEnv)
	switch {
	case isRSSH && env != d.planEnv():
		return nil, fmt.Errorf("the master at %s delivers the token of environment %q, this session wants %q", d.cs.path, env, d.planEnv()), false
	case !isRSSH && opts.Token:
		return nil, fmt.Errorf("the master at %s is not rssh's: it filters the session's environment through its own SendEnv and may drop the token", d.cs.path), false
	}
	d.log.Debug(fmt.Sprintf("auto-mux: using the master at %s", d.cs.path))
	conn := mux.NewConn(d.cs.path, d.cfg.ConnectTimeout)
	conn.Reuse(c)
	used = true
	conn.DropEnv = func(name string) bool {
		switch name {
		case session.TokenVar, session.EnvVar, session.LCTokenVar, session.LCEnvVar:
			return true
		}
		return false
	}
	return conn, nil, false
}

func (d *sharingDialer) Dial(ctx context.Context, cfg *config.Config, opts session.DialOptions) (session.Conn, error) {
	if d.proxy {
		return d.proxyDial(cfg)
	}
	if d.plan != nil && d.plan.Forward && d.child == nil {
		// Secret forwarding filters the session's agent channels, which a
		// master's sessions do not bring back here.
		d.log.Debug("not sharing the connection: secret forwarding (RsshForwardSecrets) needs its own; connecting directly")
		return d.inner.Dial(ctx, cfg, opts)
	}
	asMaster := d.child != nil
	switch d.cs.master {
	case "true", "ask":
		asMaster = true
	}
	if !asMaster {
		conn, why, stale := d.useMaster(opts)
		if conn != nil {
			return conn, nil
		}
		if why != nil {
			d.log.Debug(fmt.Sprintf("not sharing the connection: %v; connecting directly", why))
			return d.inner.Dial(ctx, cfg, opts)
		}
		if d.cs.master != "auto" && d.cs.master != "autoask" {
			return d.inner.Dial(ctx, cfg, opts)
		}
		if stale {
			// The master that will take its place removes it, and only
			// when it is this user's.
			mux.RemoveStale(d.cs.path)
		}
	}
	if d.cs.persist != 0 && d.child == nil {
		return d.startPersistentMaster(ctx, cfg, opts)
	}
	return d.becomeMaster(ctx, cfg, opts)
}

// proxyDial is -O proxy: the master's socket in proxy mode carries this
// session's own connection protocol, so its env requests (the token
// included) reach the server as sent, through an OpenSSH master too. As
// ssh, a socket with no master behind it is an error, not a direct
// connection; an rssh master for another destination or environment is
// one as well.
func (d *sharingDialer) proxyDial(cfg *config.Config) (session.Conn, error) {
	c, err := mux.Dial(d.cs.path, cfg.ConnectTimeout)
	if err != nil {
		var pe *mux.PathError
		if errors.As(err, &pe) && (errors.Is(err, mux.ErrNoMaster) || errors.Is(err, mux.ErrStale)) {
			err = fmt.Errorf("control socket connect(%s): %s", d.cs.path, errnoWords(pe.Err))
		}
		return nil, err
	}
	if dest, ok := c.Extension(extDest); ok && dest != destOf(cfg) {
		c.Close()
		return nil, fmt.Errorf("the master at %s serves %s, not %s", d.cs.path, dest, destOf(cfg))
	}
	// An rssh master adds its environment's token to every session.
	if env, ok := c.Extension(extEnv); ok && env != d.planEnv() {
		c.Close()
		return nil, fmt.Errorf("the master at %s delivers the token of environment %q, this session wants %q", d.cs.path, env, d.planEnv())
	}
	conn, chans, reqs, err := c.Proxy()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("proxy mode request: %w", err)
	}
	d.log.Debug(fmt.Sprintf("proxy mode through the master at %s", d.cs.path))
	return sshproxy.NewConn(ssh.NewClient(conn, chans, reqs), cfg), nil
}

// becomeMaster dials and serves the ControlPath on that connection.
func (d *sharingDialer) becomeMaster(ctx context.Context, cfg *config.Config, opts session.DialOptions) (session.Conn, error) {
	c, err := d.inner.Dial(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	pc, ok := c.(*sshproxy.Conn)
	if !ok {
		return c, nil
	}
	l, err := mux.Listen(d.cs.path)
	if err != nil {
		var pe *mux.PathError
		if errors.As(err, &pe) && errors.Is(err, mux.ErrExists) {
			fmt.Fprintln(d.stderr, pe.Msg)
			if d.child != nil {
				// A ControlPersist master that lost the race for the
				// socket: the rssh that started it connects on its own.
				d.child.Write([]byte{goDirect})
				d.child.Close()
				c.Close()
				return nil, &exitError{code: 0}
			}
			return c, nil
		}
		c.Close()
		return nil, err
	}
	shared, err := session.NewShared(cfg, d.plan, d.tokens, d.getenv, d.log)
	if err != nil {
		l.Close()
		c.Close()
		return nil, err
	}
	h := &mux.SSHHandler{Client: pc.Client, Log: d.log, Warn: d.stderr,
		GatewayPorts: cfg.GatewayPorts,
		Env: func(req *mux.SessionRequest) ([]mux.EnvVar, func(), error) {
			env, preamble, wipe, err := shared.Env(context.Background(), req.Env)
			if err != nil {
				return nil, nil, err
			}
			if preamble != "" && req.Command != "" && !req.Subsystem {
				req.Command = preamble + req.Command
			}
			out := make([]mux.EnvVar, len(env))
			for i, e := range env {
				out[i] = mux.EnvVar{Name: e.Name, Value: e.Value}
			}
			return out, wipe, nil
		}}
	// The master's PermitRemoteOpen governs its clients' remote SOCKS
	// forwards too: ssh keeps one set of permissions per connection.
	fw := sshproxy.Forwards{GatewayPorts: cfg.GatewayPorts, Log: d.log, Warn: d.stderr,
		PermitRemoteOpen: cfg.PermitRemoteOpen}
	h.Forwarder = func(f mux.Forward) (io.Closer, uint32, error) {
		kind, spec := f.Spec()
		stop, port, err := pc.StartForward(kind, spec, fw)
		return stop, uint32(port), err
	}
	h.RemoteForward = func(host string, port uint32, path string, serve func(ssh.NewChannel)) (io.Closer, uint32, error) {
		stop, p, err := pc.ListenRemoteChannels(host, int(port), path, d.log, serve)
		return stop, uint32(p), err
	}
	m := &masterConn{Conn: pc, done: make(chan struct{}), persist: d.cs.persist}
	sopts := mux.ServerOptions{Log: d.log,
		Extensions: [][2]string{{extDest, destOf(cfg)}, {extEnv, shared.TokenEnv()}},
		Terminate:  m.end,
	}
	if cfg.SessionType == "none" || d.cs.persist != 0 {
		// As ssh's client_stop_mux: with no session of its own (-N) or
		// persisting, a master told to stop ends with its clients'
		// sessions; otherwise its own session's end decides.
		sopts.StopListening = func() {
			go func() {
				if m.srv.WaitIdle(context.Background(), 0) == nil {
					m.end()
				}
			}()
		}
	}
	if d.cs.master == "ask" || d.cs.master == "autoask" {
		sopts.Confirm = askpassConfirm(d.getenv, cfg.Host)
	}
	m.srv = mux.NewServer(h, sopts)
	go m.srv.Serve(l)
	go func() {
		select {
		case <-pc.Done():
		case <-m.srv.Done():
		}
		m.end()
	}()
	if d.child != nil {
		// A ControlPersist master: say it is listening, leave the
		// terminal's session and its output, as ssh's daemon(3).
		d.child.Write([]byte{'\n'})
		d.child.Close()
		syscall.Setsid()
		if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
			for fd := 0; fd <= 2; fd++ {
				unix.Dup2(int(null.Fd()), fd)
			}
			null.Close()
		}
		if d.cs.persist > 0 {
			go func() {
				if m.srv.WaitIdle(context.Background(), d.cs.persist) == nil {
					d.log.Debug("ControlPersist timeout expired")
					m.end()
				}
			}()
		}
	}
	return m, nil
}

// masterConn is this process's own connection while it serves as master:
// Close waits for the sessions of its clients, as ssh's master does.
type masterConn struct {
	*sshproxy.Conn
	srv     *mux.Server
	persist time.Duration
	done    chan struct{}
	once    sync.Once
}

func (m *masterConn) end() { m.once.Do(func() { close(m.done) }) }

// Done is closed when the connection ends, the master is told to exit,
// or (ControlPersist) it has been idle long enough.
func (m *masterConn) Done() <-chan struct{} { return m.done }

func (m *masterConn) Close() error {
	select {
	case <-m.done:
	default:
		// Our own session is over: wait for the clients' sessions.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-m.done:
			case <-m.Conn.Done():
			}
			cancel()
		}()
		m.srv.WaitIdle(ctx, 0)
		cancel()
	}
	m.srv.Shutdown()
	return m.Conn.Close()
}

// startPersistentMaster starts rssh again as a ControlPersist master (Go
// cannot fork a running process, where ssh forks), waits until it listens,
// and goes through it. Should the master fail first (authentication, say),
// its error has been printed and this exits with its status.
func (d *sharingDialer) startPersistentMaster(ctx context.Context, cfg *config.Config, opts session.DialOptions) (session.Conn, error) {
	if c, err := mux.Dial(d.cs.path, cfg.ConnectTimeout); err == nil {
		// A live master holds the socket: as ssh, say so and connect
		// without sharing (ssh's muxserver_listen fails the same way).
		c.Close()
		fmt.Fprintf(d.stderr, "ControlSocket %s already exists, disabling multiplexing\n", d.cs.path)
		return d.inner.Dial(ctx, cfg, opts)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting the ControlPersist master: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting the ControlPersist master: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, d.args...)
	cmd.Env = append(os.Environ(), muxMasterFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = d.stderr
	tcp, err := d.predial(ctx, cfg)
	if err != nil {
		w.Close()
		return nil, err
	}
	if tcp != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, tcp)
		cmd.Env = append(cmd.Env, muxMasterConnEnv+"=4")
		defer tcp.Close()
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the ControlPersist master: %w", err)
	}
	w.Close()
	ready := make(chan byte, 1)
	go func() {
		b := make([]byte, 1)
		if n, _ := r.Read(b); n == 1 {
			ready <- b[0]
		}
		close(ready)
	}()
	select {
	case b, ok := <-ready:
		if !ok {
			cmd.Wait()
			return nil, &exitError{code: cmd.ProcessState.ExitCode()}
		}
		if b == goDirect {
			cmd.Wait()
			return d.inner.Dial(ctx, cfg, opts)
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return nil, ctx.Err()
	}
	go cmd.Wait() // reaped if it ends while this one runs
	conn, why, _ := d.useMaster(opts)
	if conn == nil {
		if why == nil {
			why = errors.New("its socket is gone")
		}
		return nil, fmt.Errorf("the ControlPersist master: %w", why)
	}
	return &startedMaster{Conn: conn, path: d.cs.path, timeout: time.Duration(d.cfg.ConnectTimeout) * time.Second}, nil
}

// predial connects to cfg's destination for the master about to start,
// when the connection is plain TCP (nil when it is not: the master
// connects itself). A failure is the one a direct connection reports.
func (d *sharingDialer) predial(ctx context.Context, cfg *config.Config) (*os.File, error) {
	if cfg.ProxyJump != "" || cfg.ProxyCommand != "" {
		return nil, nil
	}
	c, err := sshproxy.DialTCP(ctx, cfg, d.log)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil, nil
	}
	f, err := tc.File()
	if err != nil {
		return nil, nil
	}
	return f, nil
}

// takeMuxConn returns the connection the parent of a ControlPersist master
// made (see muxMasterConnEnv), nil in any other rssh.
func takeMuxConn(getenv func(string) string) net.Conn {
	v := getenv(muxMasterConnEnv)
	os.Unsetenv(muxMasterConnEnv)
	if v != "4" {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(4, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return nil
	}
	f := os.NewFile(4, "rssh-mux-master-conn")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil
	}
	return c
}

// startedMaster is the way through the ControlPersist master this rssh has
// just started for its own session. ssh's master sets up the command
// line's forwards itself and, under ExitOnForwardFailure, dies of one that
// fails, leaving no master behind; here the forwards go through the
// socket, so such a failure ends the master too, before this rssh exits.
type startedMaster struct {
	session.Conn
	path    string
	timeout time.Duration
}

func (m *startedMaster) StartForwards(fw sshproxy.Forwards) (*sshproxy.Forwarding, error) {
	f, err := m.Conn.StartForwards(fw)
	if err != nil && fw.ExitOnFailure {
		if c, derr := mux.Dial(m.path, m.timeout); derr == nil {
			// It removes its socket before it answers: once this
			// returns, no client finds it.
			c.Terminate(10 * time.Second)
			c.Close()
		}
	}
	return f, err
}

// goDirect is what a ControlPersist master rssh started says on its pipe
// when another master took the socket first (a newline means listening).
const goDirect = 'd'

// exitError is a failure already reported (by the master rssh started):
// exit with its status, say nothing more.
type exitError struct{ code int }

func (e *exitError) Error() string { return "" }

// askpassConfirm is ask_permission: ControlMaster ask confirms each use of
// the shared connection with SSH_ASKPASS; no askpass, no permission.
func askpassConfirm(getenv func(string) string, host string) func(string) bool {
	return func(prompt string) bool {
		askpass := getenv("SSH_ASKPASS")
		if askpass == "" {
			askpass = "/usr/bin/ssh-askpass"
		}
		cmd := exec.Command(askpass, strings.TrimSpace(prompt)+" ("+host+")")
		cmd.Env = append(os.Environ(), "SSH_ASKPASS_PROMPT=confirm")
		out, err := cmd.Output()
		if err != nil {
			return false
		}
		a := strings.ToLower(strings.TrimSpace(string(out)))
		return a == "" || a == "yes"
	}
}

// takeMuxChild returns the pipe of a ControlPersist master rssh started,
// nil in any other rssh, and takes the variable out of the environment.
func takeMuxChild(getenv func(string) string) *os.File {
	v := getenv(muxMasterFDEnv)
	os.Unsetenv(muxMasterFDEnv)
	if v != "3" {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(3, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return nil
	}
	return os.NewFile(3, "rssh-mux-master")
}
