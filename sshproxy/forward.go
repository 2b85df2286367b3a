package sshproxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"

	"github.com/rssh/rssh/internal/crash"
)

// Forwards are the port forwardings of one connection, as resolved.
type Forwards struct {
	Local, Remote, Dynamic []string // specs as Config holds them
	GatewayPorts           bool     // local listeners without a bind address take all interfaces
	ExitOnFailure          bool     // a forward that cannot be set up is an error, not a warning
	Log                    *slog.Logger
	Warn                   io.Writer // one line per failed forwarded connection, and setup warnings

	// PermitRemoteOpen limits where a remote dynamic forward's SOCKS
	// requests may connect (config.ParsePermitRemoteOpen); a request for
	// anywhere else is closed unanswered, as ssh closes it.
	PermitRemoteOpen []string

	permits *config.OpenPermits // PermitRemoteOpen, parsed
}

// parsePermits parses PermitRemoteOpen once for the forwards it governs.
func (fw *Forwards) parsePermits() error {
	p, err := config.ParsePermitRemoteOpen(fw.PermitRemoteOpen)
	if err != nil {
		return err
	}
	fw.permits = p
	return nil
}

// Forwarding is the running forwards of one connection. ~C adds to them
// and cancels them; Close stops listening.
type Forwarding struct {
	c  *Conn
	fw Forwards

	mu        sync.Mutex
	listeners []*listener
}

// listener is the listening side of one forward: a local one may listen
// on two addresses (loopback in both families), a remote one on the server.
type listener struct {
	kind config.ForwardKind
	fwd  config.Forward // for a remote port 0, ListenPort is the one the server chose
	ls   []io.Closer
}

// Close stops every listener (connections already forwarded carry on
// until the connection closes).
func (f *Forwarding) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.listeners {
		closeAll(l.ls)
	}
	f.listeners = nil
	return nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

func (f *Forwarding) add(l *listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = append(f.listeners, l)
}

// start sets up one forward of the given kind from its spec.
func (f *Forwarding) start(kind config.ForwardKind, spec string) error {
	if kind == config.RemoteForward {
		return f.startRemote(spec)
	}
	return f.startLocal(spec, kind)
}

// cancel stops listening for the forwards fwd names, as OpenSSH's -KL,
// -KD and -KR find them, and reports whether there was one. Local
// listeners match by port and by the bind address channel_fwd_bind_addr
// makes of the spec (none, "", "*" and "localhost" are all the default);
// remote ones by port and the bind address exactly as given; Unix sockets
// by path. Connections already forwarded carry on.
func (f *Forwarding) cancel(kind config.ForwardKind, fwd config.Forward) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	found := false
	kept := f.listeners[:0]
	for _, l := range f.listeners {
		if l.kind == kind && l.names(fwd) {
			closeAll(l.ls)
			found = true
			continue
		}
		kept = append(kept, l)
	}
	f.listeners = kept
	return found
}

func (l *listener) names(fwd config.Forward) bool {
	if l.fwd.ListenPath != "" || fwd.ListenPath != "" {
		return l.fwd.ListenPath == fwd.ListenPath
	}
	if l.fwd.ListenPort != fwd.ListenPort {
		return false
	}
	if l.kind == config.RemoteForward {
		return l.fwd.HasListenHost == fwd.HasListenHost && l.fwd.ListenHost == fwd.ListenHost
	}
	return bindAddr(l.fwd) == bindAddr(fwd)
}

// bindAddr is channel_fwd_bind_addr's answer for a client's listener: the
// address it was explicitly asked for, or "" for the defaults.
func bindAddr(f config.Forward) string {
	if !f.HasListenHost || f.ListenHost == "*" || f.ListenHost == "localhost" {
		return ""
	}
	return f.ListenHost
}

// StartForwards sets up -L, -D and -R forwards as OpenSSH does after
// authentication. A forward that cannot be set up is a warning on Warn,
// or, with ExitOnFailure, the error returned (nothing is left listening
// then). Failures of single forwarded connections are never fatal.
func (c *Conn) StartForwards(fw Forwards) (*Forwarding, error) {
	// As ssh_init_forwarding, a PermitRemoteOpen ssh cannot apply is
	// fatal whether or not a forward needs it.
	if err := fw.parsePermits(); err != nil {
		return nil, err
	}
	f := &Forwarding{c: c, fw: fw}
	for _, set := range []struct {
		kind  config.ForwardKind
		specs []string
	}{{config.LocalForward, fw.Local}, {config.DynamicForward, fw.Dynamic}, {config.RemoteForward, fw.Remote}} {
		for _, spec := range set.specs {
			err := f.start(set.kind, spec)
			if err == nil {
				continue
			}
			if fw.ExitOnFailure {
				f.Close()
				return nil, err
			}
			fmt.Fprintf(fw.Warn, "rssh: warning: %v\n", err)
		}
	}
	return f, nil
}

// localBinds are the addresses a local listener takes, as OpenSSH's
// channel_fwd_bind_addr decides for the client: no bind address means
// loopback (both families) unless GatewayPorts; "" or "*" all
// interfaces; "localhost" loopback; anything else that address.
func localBinds(fwd config.Forward, gatewayPorts bool) []string {
	loopback := []string{"127.0.0.1", "::1"}
	if !fwd.HasListenHost {
		if gatewayPorts {
			return []string{""}
		}
		return loopback
	}
	switch fwd.ListenHost {
	case "", "*":
		return []string{""}
	case "localhost":
		return loopback
	}
	return []string{fwd.ListenHost}
}

func (f *Forwarding) startLocal(spec string, kind config.ForwardKind) error {
	fw := f.fw
	fwd, err := config.ParseForward(spec, kind)
	if err != nil {
		return err
	}
	var ls []net.Listener
	var lastErr error
	if fwd.ListenPath != "" {
		l, err := net.Listen("unix", fwd.ListenPath)
		if err != nil {
			return fmt.Errorf("cannot listen on %s for forwarding: %w", fwd.ListenPath, unwrapOp(err))
		}
		ls = append(ls, l)
	} else {
		for _, host := range localBinds(fwd, fw.GatewayPorts) {
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(fwd.ListenPort)))
			if err != nil {
				lastErr = fmt.Errorf("cannot listen to port %d for forwarding: %s: %w", fwd.ListenPort, bindName(host), unwrapOp(err))
				continue
			}
			ls = append(ls, l)
		}
		if len(ls) == 0 {
			return lastErr
		}
	}
	rec := &listener{kind: kind, fwd: fwd}
	for _, l := range ls {
		rec.ls = append(rec.ls, l)
		fw.Log.Debug("local forwarding listening", "addr", l.Addr().String(), "spec", spec)
		crash.Go(func() { f.c.acceptLocal(l, fwd, fw) })
	}
	f.add(rec)
	return nil
}

func bindName(host string) string {
	if host == "" {
		return "all interfaces"
	}
	return host
}

// acceptLocal serves one local listener until it is closed.
func (c *Conn) acceptLocal(l net.Listener, fwd config.Forward, fw Forwards) {
	acceptLoop(l, fw.Warn, func(local net.Conn) {
		crash.Go(func() {
			if fwd.Dynamic() {
				// Named by its target once the SOCKS request names one, as
				// OpenSSH renames it.
				ch := c.track("dynamic-tcpip", "dynamic-tcpip")
				defer ch.close()
				serveSOCKS(local, func(network, addr string) (net.Conn, error) {
					ch.rename(forwardedName("direct-tcpip", l.Addr(), addr, local))
					return c.Dial(network, addr)
				}, fw.Warn)
				return
			}
			ctype, network, target := "direct-tcpip", "tcp", net.JoinHostPort(fwd.ConnectHost, strconv.Itoa(fwd.ConnectPort))
			if fwd.ConnectPath != "" {
				ctype, network, target = "direct-streamlocal@openssh.com", "unix", fwd.ConnectPath
			}
			ch := c.track(ctype, forwardedName(ctype, l.Addr(), target, local))
			defer ch.close()
			remote, err := c.Dial(network, target)
			if err != nil {
				fmt.Fprintf(fw.Warn, "rssh: forwarding %s to %s: %v\n", l.Addr(), target, openError(err))
				local.Close()
				return
			}
			pipe(asHalfCloser(local), asHalfCloser(remote))
		})
	})
}

func (f *Forwarding) startRemote(spec string) error {
	c, fw := f.c, f.fw
	fwd, err := config.ParseForward(spec, config.RemoteForward)
	if err != nil {
		return err
	}
	// OpenSSH's channel_rfwd_bind_host: the server's GatewayPorts, not
	// ours, decides what "localhost" and "" mean there.
	host := "localhost"
	if fwd.HasListenHost {
		host = fwd.ListenHost
		if host == "*" {
			host = ""
		}
	}
	if fwd.ListenPath != "" {
		host = ""
	}
	asked := fwd // fwd learns its port below, while channels may come already
	rf, err := c.listenRemote(host, fwd.ListenPort, fwd.ListenPath, fw.Log, func(nc ssh.NewChannel, origin string) {
		c.serveForwarded(nc, origin, asked, fw)
	})
	if err != nil {
		what := fwd.ListenPath
		if what == "" {
			what = "listen port " + strconv.Itoa(fwd.ListenPort)
		}
		fw.Log.Debug("remote forward refused", "spec", spec, "err", err)
		return fmt.Errorf("remote port forwarding failed for %s", what)
	}
	if fwd.ListenPath == "" && fwd.ListenPort == 0 {
		fwd.ListenPort = rf.port // what -KR names it by
		host, port := fwd.ConnectHost, fwd.ConnectPort
		if fwd.Dynamic() {
			host = "socks" // OpenSSH's placeholder target for a dynamic one
		}
		fw.Log.Info(fmt.Sprintf("Allocated port %d for remote forward to %s:%d", rf.port, host, port))
	}
	f.add(&listener{kind: config.RemoteForward, fwd: fwd, ls: []io.Closer{rf}})
	return nil
}

// serveForwarded serves one channel the server opened for the remote
// forward fwd. As OpenSSH, the local end is connected first and a failure
// refuses the channel ("connect failed"); a dynamic forward (-R port
// alone) accepts and serves SOCKS, making its connections from here.
func (c *Conn) serveForwarded(nc ssh.NewChannel, origin string, fwd config.Forward, fw Forwards) {
	enter(cbForwardChannel)
	ctype := nc.ChannelType()
	var laddr, raddr net.Addr = &net.UnixAddr{Name: fwd.ListenPath, Net: "unix"}, &net.UnixAddr{Name: "@", Net: "unix"}
	if fwd.ListenPath == "" {
		laddr, raddr = &net.TCPAddr{}, &net.TCPAddr{IP: net.ParseIP(origin)}
	}
	if fwd.Dynamic() {
		remote, err := acceptForwarded(nc, laddr, raddr)
		if err != nil {
			return
		}
		ch := c.track(ctype, origin)
		defer ch.close()
		serveSOCKS(remote, func(network, addr string) (net.Conn, error) {
			if !permitted(fw.permits, addr) {
				// rdynamic_connect_finish: the channel is closed, the
				// SOCKS request unanswered.
				fw.Log.Debug("requested forward not permitted", "target", addr)
				return nil, errNotPermitted
			}
			return dialShort(&c.rfwd.short, fw.Warn, network, addr)
		}, fw.Warn)
		return
	}
	network, target := "tcp", net.JoinHostPort(fwd.ConnectHost, strconv.Itoa(fwd.ConnectPort))
	if fwd.ConnectPath != "" {
		network, target = "unix", fwd.ConnectPath
	}
	local, err := dialShort(&c.rfwd.short, fw.Warn, network, target)
	if err != nil {
		fmt.Fprintf(fw.Warn, "rssh: remote forward to %s: connect failed: %v\n", target, unwrapOp(err))
		nc.Reject(ssh.ConnectionFailed, "connect failed")
		return
	}
	remote, err := acceptForwarded(nc, laddr, raddr)
	if err != nil {
		local.Close()
		return
	}
	ch := c.track(ctype, origin)
	defer ch.close()
	pipe(remote, asHalfCloser(local))
}

// errNotPermitted is a remote dynamic forward's request for a destination
// PermitRemoteOpen does not list: serveSOCKS closes it without a reply.
var errNotPermitted = errors.New("requested forward not permitted")

// permitted reports whether PermitRemoteOpen lets a SOCKS request for addr
// (host:port as serveSOCKS makes it) be connected.
func permitted(p *config.OpenPermits, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && p.Permits(host, n)
}

// asHalfCloser adapts the conns forwarding meets: TCP and Unix sockets,
// and x/crypto's channel conns, which all can half-close.
func asHalfCloser(c net.Conn) halfCloser {
	if h, ok := c.(halfCloser); ok {
		return h
	}
	return noHalfClose{c}
}

type noHalfClose struct{ net.Conn }

func (n noHalfClose) CloseWrite() error { return n.Conn.Close() }

// openError words a refused channel open as OpenSSH does ("connect
// failed: Connection refused").
func openError(err error) error {
	var oe *ssh.OpenChannelError
	if errors.As(err, &oe) {
		if oe.Message != "" {
			return fmt.Errorf("open failed: %v: %s", oe.Reason, oe.Message)
		}
		return fmt.Errorf("open failed: %v", oe.Reason)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("open timed out")
	}
	return err
}
