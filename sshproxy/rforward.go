package sshproxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/crash"
)

// The channel types a server opens for a remote (-R) forward.
const (
	forwardedTCP  = "forwarded-tcpip"
	forwardedUnix = "forwarded-streamlocal@openssh.com"
)

// maxQueuedOpens bounds the forwarded channels held while a port-0
// request awaits its reply; a server that sends more is refused.
const maxQueuedOpens = 256

// remoteForwards routes the channels the server opens for remote forwards
// to the forward that asked for them, in place of x/crypto's Client.Listen.
// That one registers a forward only once the server's reply is in, while a
// server may open the first channel the moment it has replied: that
// connection was refused ("no forward for address", golang/go#64094). Here a
// forward is registered before its request leaves, and a channel for a
// port-0 request that comes before the reply has named the port waits for
// it. Channels for forwards never asked for, or cancelled, are refused as
// OpenSSH refuses them.
type remoteForwards struct {
	once sync.Once
	log  *slog.Logger

	mu      sync.Mutex
	entries []*remoteForward
	queued  []queuedOpen
	ended   bool // the connection is gone

	short shortageLog // connecting to targets ran out of file descriptors
}

// remoteForward is one registered forward. A TCP one is matched by the
// bind address exactly as it was sent and the port as bound, a Unix one by
// its path, as OpenSSH's open_listen_match_tcpip and _streamlocal do.
type remoteForward struct {
	set     *remoteForwards
	c       *Conn
	unix    bool
	host    string // the bind address as sent in the request
	port    int    // as bound; 0 while a port-0 request awaits its reply
	path    string
	pending bool // a port-0 request not answered yet
	serve   func(nc ssh.NewChannel, origin string)
	once    sync.Once
}

type queuedOpen struct {
	nc           ssh.NewChannel
	host, origin string
	port         int
}

// forwardedTCPPayload is the extra data of a forwarded-tcpip open (RFC 4254 7.2).
type forwardedTCPPayload struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

type forwardedUnixPayload struct {
	Path     string
	Reserved string
}

// listenRemote asks the server to listen for a forward: on host and port
// (port 0: the server picks, and the returned forward holds its choice),
// or on path when path is set. serve gets each channel the server opens
// for it, on its own goroutine. Closing the forward cancels it.
func (c *Conn) listenRemote(host string, port int, path string, log *slog.Logger, serve func(ssh.NewChannel, string)) (*remoteForward, error) {
	r := &c.rfwd
	r.once.Do(func() {
		r.log = log
		for _, ctype := range []string{forwardedTCP, forwardedUnix} {
			chans := c.HandleChannelOpen(ctype)
			if chans == nil {
				continue // someone else serves them: never in rssh
			}
			crash.Go(func() {
				for nc := range chans {
					r.route(nc)
				}
				r.end()
			})
		}
	})
	f := &remoteForward{set: r, c: c, unix: path != "", host: host, port: port, path: path, pending: path == "" && port == 0, serve: serve}
	r.mu.Lock()
	r.entries = append(r.entries, f)
	r.mu.Unlock()

	var (
		ok   bool
		resp []byte
		err  error
	)
	if f.unix {
		ok, resp, err = c.SendRequest("streamlocal-forward@openssh.com", true, ssh.Marshal(struct{ Path string }{path}))
	} else {
		ok, resp, err = c.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
			Addr string
			Port uint32
		}{host, uint32(port)}))
	}
	if err == nil && !ok {
		err = errors.New("request denied by peer")
	}
	if err == nil && f.pending {
		var p struct{ Port uint32 }
		if uerr := ssh.Unmarshal(resp, &p); uerr != nil || p.Port == 0 || p.Port > 65535 {
			err = errors.New("the server named no port for a port-0 forward")
			// It listens somewhere we cannot name; we cannot cancel it either.
		} else {
			r.resolve(f, int(p.Port))
			return f, nil
		}
	}
	if err != nil {
		r.remove(f)
		return nil, err
	}
	return f, nil
}

// route hands one forwarded channel to its forward, queues it while a
// port-0 request on its address is unanswered, or refuses it.
func (r *remoteForwards) route(nc ssh.NewChannel) {
	var q queuedOpen
	switch nc.ChannelType() {
	case forwardedTCP:
		var p forwardedTCPPayload
		if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
			nc.Reject(ssh.ConnectionFailed, "could not parse forwarded-tcpip payload: "+err.Error())
			return
		}
		q = queuedOpen{nc: nc, host: p.Addr, port: int(p.Port), origin: p.OriginAddr}
	case forwardedUnix:
		var p forwardedUnixPayload
		if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
			nc.Reject(ssh.ConnectionFailed, "could not parse forwarded-streamlocal@openssh.com payload: "+err.Error())
			return
		}
		q = queuedOpen{nc: nc, host: p.Path, port: -1, origin: "forwarded-streamlocal"}
	default:
		nc.Reject(ssh.UnknownChannelType, "unknown channel type")
		return
	}
	r.mu.Lock()
	f, wait := r.match(q)
	if f == nil && wait && len(r.queued) < maxQueuedOpens {
		r.queued = append(r.queued, q)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.dispatch(f, q)
}

// match finds q's forward; wait says a port-0 request on its address is
// still unanswered, so it may yet be one. Called with mu held.
func (r *remoteForwards) match(q queuedOpen) (f *remoteForward, wait bool) {
	unix := q.port < 0
	for _, e := range r.entries {
		switch {
		case e.unix != unix:
		case unix:
			if e.path == q.host {
				return e, false
			}
		case e.host != q.host:
		case e.pending:
			wait = true
		case e.port == q.port:
			return e, false
		}
	}
	return nil, wait
}

func (r *remoteForwards) dispatch(f *remoteForward, q queuedOpen) {
	if f == nil {
		// OpenSSH's words (channel_connect_by_listen_address), at its level.
		if q.port < 0 {
			r.log.Error(fmt.Sprintf("WARNING: Server requests forwarding for unknown path %s", q.host))
		} else {
			r.log.Error(fmt.Sprintf("WARNING: Server requests forwarding for unknown listen_port %d", q.port))
		}
		q.nc.Reject(ssh.Prohibited, "no forward for address")
		return
	}
	crash.Go(func() { f.serve(q.nc, q.origin) })
}

// resolve records the port the server chose for f and delivers what
// waited for it.
func (r *remoteForwards) resolve(f *remoteForward, port int) {
	r.mu.Lock()
	f.port, f.pending = port, false
	r.mu.Unlock()
	r.flush()
}

// remove unregisters f and refuses whatever only it could have taken.
func (r *remoteForwards) remove(f *remoteForward) {
	r.mu.Lock()
	for i, e := range r.entries {
		if e == f {
			r.entries = append(r.entries[:i], r.entries[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	r.flush()
}

// flush delivers or refuses every queued channel that no longer waits.
func (r *remoteForwards) flush() {
	type delivery struct {
		f *remoteForward
		q queuedOpen
	}
	var out []delivery
	r.mu.Lock()
	kept := r.queued[:0]
	for _, q := range r.queued {
		f, wait := r.match(q)
		if f == nil && wait && !r.ended {
			kept = append(kept, q)
			continue
		}
		out = append(out, delivery{f, q})
	}
	clear(r.queued[len(kept):])
	r.queued = kept
	r.mu.Unlock()
	for _, d := range out {
		r.dispatch(d.f, d.q)
	}
}

// end is the connection going away: nothing waits any longer.
func (r *remoteForwards) end() {
	r.mu.Lock()
	r.ended = true
	q := r.queued
	r.queued = nil
	r.mu.Unlock()
	for _, o := range q {
		o.nc.Reject(ssh.ConnectionFailed, "connection closing")
	}
}

// Close cancels the forward: later channels for it are refused and the
// server is asked to stop listening (cancel-tcpip-forward, or
// cancel-streamlocal-forward@openssh.com), without waiting for its answer
// as OpenSSH does not. Connections already forwarded carry on.
func (f *remoteForward) Close() error {
	var err error
	f.once.Do(func() {
		f.set.remove(f)
		if f.unix {
			_, _, err = f.c.SendRequest("cancel-streamlocal-forward@openssh.com", false, ssh.Marshal(struct{ Path string }{f.path}))
		} else {
			_, _, err = f.c.SendRequest("cancel-tcpip-forward", false, ssh.Marshal(struct {
				Addr string
				Port uint32
			}{f.host, uint32(f.port)}))
		}
	})
	return err
}

// acceptForwarded accepts a forwarded channel as a net.Conn.
func acceptForwarded(nc ssh.NewChannel, local, remote net.Addr) (*forwardedConn, error) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return nil, err
	}
	crash.Go(func() { ssh.DiscardRequests(reqs) })
	crash.Go(func() { io.Copy(io.Discard, ch.Stderr()) })
	return &forwardedConn{Channel: ch, local: local, remote: remote}, nil
}

// forwardedConn is an accepted forwarded channel as the net.Conn that
// serveSOCKS and pipe take. A channel has no timed reads: a deadline that
// passes closes it, which is what the one deadline set on it (the SOCKS
// handshake's) is for.
type forwardedConn struct {
	ssh.Channel
	local, remote net.Addr

	mu    sync.Mutex
	timer *time.Timer
}

var _ net.Conn = (*forwardedConn)(nil)
var _ halfCloser = (*forwardedConn)(nil)

func (f *forwardedConn) LocalAddr() net.Addr  { return f.local }
func (f *forwardedConn) RemoteAddr() net.Addr { return f.remote }

func (f *forwardedConn) SetDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	if !t.IsZero() {
		f.timer = time.AfterFunc(time.Until(t), func() { f.Channel.Close() })
	}
	return nil
}

func (f *forwardedConn) SetReadDeadline(t time.Time) error  { return f.SetDeadline(t) }
func (f *forwardedConn) SetWriteDeadline(t time.Time) error { return f.SetDeadline(t) }
