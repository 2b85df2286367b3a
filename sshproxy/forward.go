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
)

// Forwards are the port forwardings of one connection, as resolved.
type Forwards struct {
	Local, Remote, Dynamic []string // specs as Config holds them
	GatewayPorts           bool     // local listeners without a bind address take all interfaces
	ExitOnFailure          bool     // a forward that cannot be set up is an error, not a warning
	Log                    *slog.Logger
	Warn                   io.Writer // one line per failed forwarded connection, and setup warnings
}

// Forwarding is the running forwards; Close stops listening.
type Forwarding struct {
	mu        sync.Mutex
	listeners []io.Closer
}

// Close stops every listener (connections already forwarded carry on
// until the connection closes).
func (f *Forwarding) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.listeners {
		l.Close()
	}
	f.listeners = nil
	return nil
}

func (f *Forwarding) add(l io.Closer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = append(f.listeners, l)
}

// StartForwards sets up -L, -D and -R forwards as OpenSSH does after
// authentication. A forward that cannot be set up is a warning on Warn,
// or, with ExitOnFailure, the error returned (nothing is left listening
// then). Failures of single forwarded connections are never fatal.
func (c *Conn) StartForwards(fw Forwards) (*Forwarding, error) {
	f := &Forwarding{}
	fail := func(err error) error {
		if fw.ExitOnFailure {
			f.Close()
			return err
		}
		fmt.Fprintf(fw.Warn, "rssh: warning: %v\n", err)
		return nil
	}
	for _, spec := range fw.Local {
		if err := c.startLocal(f, fw, spec, config.LocalForward); err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
		}
	}
	for _, spec := range fw.Dynamic {
		if err := c.startLocal(f, fw, spec, config.DynamicForward); err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
		}
	}
	for _, spec := range fw.Remote {
		if err := c.startRemote(f, fw, spec); err != nil {
			if err := fail(err); err != nil {
				return nil, err
			}
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

func (c *Conn) startLocal(f *Forwarding, fw Forwards, spec string, kind config.ForwardKind) error {
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
	for _, l := range ls {
		f.add(l)
		fw.Log.Debug("local forwarding listening", "addr", l.Addr().String(), "spec", spec)
		go c.acceptLocal(l, fwd, fw)
	}
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
	for {
		local, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		go func() {
			if fwd.Dynamic() {
				serveSOCKS(local, func(network, addr string) (net.Conn, error) { return c.Dial(network, addr) }, fw.Warn)
				return
			}
			network, target := "tcp", net.JoinHostPort(fwd.ConnectHost, strconv.Itoa(fwd.ConnectPort))
			if fwd.ConnectPath != "" {
				network, target = "unix", fwd.ConnectPath
			}
			remote, err := c.Dial(network, target)
			if err != nil {
				fmt.Fprintf(fw.Warn, "rssh: forwarding %s to %s: %v\n", l.Addr(), target, openError(err))
				local.Close()
				return
			}
			pipe(asHalfCloser(local), asHalfCloser(remote))
		}()
	}
}

func (c *Conn) startRemote(f *Forwarding, fw Forwards, spec string) error {
	fwd, err := config.ParseForward(spec, config.RemoteForward)
	if err != nil {
		return err
	}
	var l net.Listener
	if fwd.ListenPath != "" {
		l, err = c.ListenUnix(fwd.ListenPath)
	} else {
		// OpenSSH's channel_rfwd_bind_host: the server's GatewayPorts, not
		// ours, decides what "localhost" and "" mean there.
		host := "localhost"
		if fwd.HasListenHost {
			host = fwd.ListenHost
			if host == "*" {
				host = ""
			}
		}
		l, err = c.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(fwd.ListenPort)))
	}
	if err != nil {
		what := fwd.ListenPath
		if what == "" {
			what = "listen port " + strconv.Itoa(fwd.ListenPort)
		}
		return fmt.Errorf("remote port forwarding failed for %s", what)
	}
	f.add(l)
	target := net.JoinHostPort(fwd.ConnectHost, strconv.Itoa(fwd.ConnectPort))
	if fwd.ConnectPath != "" {
		target = fwd.ConnectPath
	}
	if fwd.ListenPath == "" && fwd.ListenPort == 0 {
		port := 0
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			port = a.Port
		}
		if fwd.Dynamic() {
			fw.Log.Info(fmt.Sprintf("Allocated port %d for remote forward to dynamic", port))
		} else {
			fw.Log.Info(fmt.Sprintf("Allocated port %d for remote forward to %s:%d", port, fwd.ConnectHost, fwd.ConnectPort))
		}
	}
	go func() {
		for {
			remote, err := l.Accept()
			if err != nil {
				return // closed, or the connection ended
			}
			go func() {
				if fwd.Dynamic() {
					// -R port alone: the server's end is a SOCKS proxy whose
					// connections rssh makes from here.
					serveSOCKS(remote, net.Dial, fw.Warn)
					return
				}
				network := "tcp"
				if fwd.ConnectPath != "" {
					network = "unix"
				}
				local, err := net.Dial(network, target)
				if err != nil {
					fmt.Fprintf(fw.Warn, "rssh: remote forward to %s: connect failed: %v\n", target, unwrapOp(err))
					remote.Close()
					return
				}
				pipe(asHalfCloser(remote), asHalfCloser(local))
			}()
		}
	}()
	return nil
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
