//go:build unix

package mux

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/crash"
)

// ProxyHandler is a Handler that also serves proxy-mode clients
// (MUX_C_PROXY, `ssh -O proxy`): after MUX_S_PROXY the control connection
// carries the SSH connection protocol (RFC 4254) in OpenSSH's mux-proxy
// framing, and the handler relays it onto its connection.
type ProxyHandler interface {
	// Proxy serves conn until the client or the connection ends, and
	// closes it.
	Proxy(conn net.Conn, opts ProxyOptions)
}

// ProxyOptions are what a proxy client said of itself in its HELLO.
type ProxyOptions struct {
	// Agent: it answers agent channels (rssh's client does; OpenSSH's
	// ssh would crash on one in proxy mode, so it gets none).
	Agent bool
}

var _ ProxyHandler = (*SSHHandler)(nil)

const (
	// proxyWindow is the window each channel gives the proxy client: what
	// it may send before the relay has passed it on upstream.
	proxyWindow = 2 * 1024 * 1024
	// proxyMaxPacket is the largest DATA the client may send us.
	proxyMaxPacket = 32 * 1024
	// proxyMaxQueued bounds the bytes waiting to be written to a client
	// that does not read: past it the client is dropped.
	proxyMaxQueued = 64 * 1024 * 1024
	// proxyMaxChannels bounds the channels one proxy client holds.
	proxyMaxChannels = 4096
)

var errProxyClosed = errors.New("proxy client gone")

// proxyConn is one proxy-mode client: the downstream.
type proxyConn struct {
	h    *SSHHandler
	c    net.Conn
	log  *slog.Logger
	opts ProxyOptions
	proxyOut

	mu      sync.Mutex
	chans   map[uint32]*proxyChan // by our id
	opening int                   // channel opens on their way upstream
	nextID  uint32
	fwds    []*proxyFwd
	ended   bool

	globals chan *proxyMsg
	done    chan struct{}
}

// proxyFwd is a remote forward the client asked for.
type proxyFwd struct {
	host      string
	port      uint32 // as requested
	allocated uint32
	path      string
	stop      io.Closer
}

// proxyChan is one channel of the client's, relayed to an upstream one.
type proxyChan struct {
	pc    *proxyConn
	id    uint32 // ours, as the client addresses it
	ctype string

	// opened gets the client's answer to a channel the server opened.
	opened chan *proxyMsg

	mu        sync.Mutex
	cond      *sync.Cond
	peer      uint32 // the client's id
	ch        ssh.Channel
	started   bool
	peerWin   uint32 // bytes we may still send the client
	peerMax   uint32
	ourWin    uint32 // bytes the client may still send us
	queue     []*proxyMsg
	closeRcvd bool // the client sent CLOSE
	closeSent bool
	eofSent   bool
	dead      bool // torn down: nothing more goes either way
	replies   []*ssh.Request
	preamble  string
}

// Proxy relays a proxy-mode client's connection protocol onto h.Client.
func (h *SSHHandler) Proxy(conn net.Conn, opts ProxyOptions) {
	pc := &proxyConn{h: h, c: conn, log: h.log(), opts: opts, chans: map[uint32]*proxyChan{},
		globals: make(chan *proxyMsg, 64), done: make(chan struct{})}
	pc.proxyOut.init(conn)
	crash.Go(pc.serveGlobals)
	watch := make(chan struct{})
	crash.Go(func() {
		// The master's connection ending ends the client's: it sees EOF.
		select {
		case <-h.clientDone():
			conn.Close()
		case <-watch:
		}
	})
	err := pc.read()
	close(watch)
	if err != nil {
		pc.log.Warn("mux proxy client dropped: " + err.Error())
	}
	pc.teardown()
}

// clientDone is closed once h.Client's connection has ended.
func (h *SSHHandler) clientDone() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		h.done = make(chan struct{})
		done := h.done
		crash.Go(func() { h.Client.Wait(); close(done) })
	}
	return h.done
}

// read dispatches the client's packets until it ends (nil) or breaks the
// protocol (an error).
func (pc *proxyConn) read() error {
	defer close(pc.globals)
	r := bufio.NewReaderSize(pc.c, 64*1024)
	for {
		m, err := readProxyPacket(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		pm, err := parseProxyMsg(m)
		if err != nil {
			return err
		}
		if err := pc.dispatch(pm); err != nil {
			return err
		}
	}
}

func (pc *proxyConn) dispatch(pm *proxyMsg) error {
	switch pm.Type {
	case msgGlobalRequest:
		select {
		case pc.globals <- pm:
		case <-pc.done:
		}
		return nil
	case msgRequestSuccess, msgRequestFailure:
		return nil // we send the client no global requests
	case msgChannelOpen:
		pc.mu.Lock()
		full := len(pc.chans)+pc.opening >= proxyMaxChannels
		if !full {
			pc.opening++
		}
		pc.mu.Unlock()
		if full {
			return pc.send((&proxyMsg{Type: msgChannelOpenFailure, Recipient: pm.Sender,
				Code: uint32(ssh.ResourceShortage), Data: []byte("too many channels")}).marshal())
		}
		crash.Go(func() {
			defer func() {
				pc.mu.Lock()
				pc.opening--
				pc.mu.Unlock()
			}()
			pc.openUpstream(pm)
		})
		return nil
	}
	pc.mu.Lock()
	c := pc.chans[pm.Recipient]
	pc.mu.Unlock()
	if c == nil {
		return fmt.Errorf("message type %d for unknown channel %d", pm.Type, pm.Recipient)
	}
	var reply *ssh.Request
	err := func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closeRcvd {
			return fmt.Errorf("message type %d for channel %d after its close", pm.Type, pm.Recipient)
		}
		switch pm.Type {
		case msgChannelOpenConfirm, msgChannelOpenFailure:
			if c.opened == nil {
				return fmt.Errorf("open answer for channel %d it did not get", pm.Recipient)
			}
			if pm.Type == msgChannelOpenConfirm {
				// Set here, before the client's next message (a window
				// adjust, say) for the channel can come.
				c.peer, c.peerWin, c.peerMax = pm.Sender, pm.Window, pm.MaxPacket
			} else {
				c.closeRcvd = true // nothing more from the client for it
			}
			c.opened <- pm // buffered, and only one answer gets here
			c.opened = nil
			return nil
		}
		if c.opened != nil {
			return fmt.Errorf("message type %d for channel %d before it was confirmed", pm.Type, pm.Recipient)
		}
		switch pm.Type {
		case msgChannelWindowAdj:
			if uint64(c.peerWin)+uint64(pm.Window) > 1<<32-1 {
				c.peerWin = 1<<32 - 1
			} else {
				c.peerWin += pm.Window
			}
			c.cond.Broadcast()
			return nil
		case msgChannelSuccess, msgChannelFailure:
			if len(c.replies) == 0 {
				return fmt.Errorf("channel %d: reply to no request", pm.Recipient)
			}
			reply = c.replies[0]
			c.replies[0] = nil
			c.replies = c.replies[1:]
			return nil
		case msgChannelData, msgChannelExtData:
			if uint64(len(pm.Data)) > uint64(c.ourWin) || len(pm.Data) > proxyMaxPacket {
				return fmt.Errorf("channel %d: %d bytes of data beyond the window (%d) or packet size", pm.Recipient, len(pm.Data), c.ourWin)
			}
			c.ourWin -= uint32(len(pm.Data))
			pm.Data = append([]byte(nil), pm.Data...)
		case msgChannelClose:
			c.closeRcvd = true
			if c.closeSent {
				pc.free(c)
			}
		}
		c.queue = append(c.queue, pm)
		c.cond.Broadcast()
		return nil
	}()
	if reply != nil {
		reply.Reply(pm.Type == msgChannelSuccess, nil)
	}
	return err
}

// newChan registers a channel under a fresh id of ours.
func (pc *proxyConn) newChan(ctype string) (*proxyChan, error) {
	c := &proxyChan{pc: pc, ctype: ctype, ourWin: proxyWindow}
	c.cond = sync.NewCond(&c.mu)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.ended {
		return nil, errProxyClosed
	}
	c.id = freeID(&pc.nextID, pc.chans)
	pc.chans[c.id] = c
	return c, nil
}

// free forgets c once CLOSE went both ways. Called with c.mu held.
func (pc *proxyConn) free(c *proxyChan) {
	pc.mu.Lock()
	delete(pc.chans, c.id)
	pc.mu.Unlock()
}

// openUpstream opens the channel the client asked for on the master's
// connection and answers the client.
func (pc *proxyConn) openUpstream(pm *proxyMsg) {
	fail := func(reason ssh.RejectionReason, why string) {
		pc.send((&proxyMsg{Type: msgChannelOpenFailure, Recipient: pm.Sender, Code: uint32(reason), Data: []byte(why)}).marshal())
	}
	switch pm.Name {
	case "session", "direct-tcpip", "direct-streamlocal@openssh.com":
	default:
		pc.log.Debug("mux proxy: refused channel type " + pm.Name)
		fail(ssh.UnknownChannelType, "unsupported channel type")
		return
	}
	ch, reqs, err := pc.h.Client.OpenChannel(pm.Name, pm.Rest)
	if err != nil {
		var oe *ssh.OpenChannelError
		if errors.As(err, &oe) {
			fail(oe.Reason, oe.Message)
		} else {
			fail(ssh.ConnectionFailed, err.Error())
		}
		return
	}
	var preamble string
	if pm.Name == "session" && pc.h.Env != nil {
		// Each session gets the env requests a fresh connection would
		// send, the environment's token included.
		// The command is not known yet (the client sends its exec
		// later): a NUL, which no command holds, marks where a preamble
		// would go.
		req := &SessionRequest{Command: "\x00"}
		env, done, err := pc.h.Env(req)
		if err != nil {
			ch.Close()
			pc.log.Debug("mux proxy: session environment", "err", err)
			fail(ssh.ConnectionFailed, "session environment: "+err.Error())
			return
		}
		for _, e := range env {
			ch.SendRequest("env", false, envPayload(e.Name, e.Value))
		}
		if done != nil {
			done()
		}
		preamble, _ = strings.CutSuffix(req.Command, "\x00")
	}
	c, err := pc.newChan(pm.Name)
	if err != nil {
		ch.Close()
		return
	}
	c.mu.Lock()
	c.peer, c.peerWin, c.peerMax, c.preamble = pm.Sender, pm.Window, pm.MaxPacket, preamble
	c.mu.Unlock()
	if pc.send((&proxyMsg{Type: msgChannelOpenConfirm, Recipient: pm.Sender, Sender: c.id,
		Window: proxyWindow, MaxPacket: proxyMaxPacket}).marshal()) != nil {
		ch.Close()
		return
	}
	c.start(ch, reqs)
}

// offer hands the client a channel the server opened for one of its
// remote forwards.
func (pc *proxyConn) offer(nc ssh.NewChannel) {
	c, err := pc.newChan(nc.ChannelType())
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, "mux client gone")
		return
	}
	opened := make(chan *proxyMsg, 1)
	c.mu.Lock()
	c.opened = opened
	c.mu.Unlock()
	pc.send((&proxyMsg{Type: msgChannelOpen, Name: nc.ChannelType(), Sender: c.id,
		Window: proxyWindow, MaxPacket: proxyMaxPacket, Rest: nc.ExtraData()}).marshal())
	var pm *proxyMsg
	select {
	case pm = <-opened:
	case <-pc.done:
		nc.Reject(ssh.ConnectionFailed, "mux client gone")
		return
	}
	if pm.Type == msgChannelOpenFailure {
		c.mu.Lock()
		pc.free(c)
		c.mu.Unlock()
		nc.Reject(ssh.RejectionReason(pm.Code), string(pm.Data))
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		ch = nil
	}
	c.start(ch, reqs)
}

// start relays the channel both ways; ch nil is an upstream channel that
// could not be had (the client's channel is closed at once).
func (c *proxyChan) start(ch ssh.Channel, reqs <-chan *ssh.Request) {
	c.mu.Lock()
	c.ch, c.started = ch, true
	if c.dead {
		c.mu.Unlock()
		if ch != nil {
			ch.Close()
			go ssh.DiscardRequests(reqs)
		}
		return
	}
	c.mu.Unlock()
	crash.Go(c.inbound)
	if ch == nil {
		c.sendClose()
		return
	}
	var outputs sync.WaitGroup
	outputs.Add(2)
	crash.Go(func() { defer outputs.Done(); c.pump(ch, 0) })
	crash.Go(func() { defer outputs.Done(); c.pump(ch.Stderr(), 1) })
	crash.Go(func() { c.upstreamRequests(reqs, &outputs) })
}

// inbound passes what the client sent on the channel upstream, in order,
// and opens its window as the data leaves.
func (c *proxyChan) inbound() {
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.dead {
			c.cond.Wait()
		}
		if c.dead && len(c.queue) == 0 {
			c.mu.Unlock()
			return
		}
		pm := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		ch, peer := c.ch, c.peer
		c.mu.Unlock()
		switch pm.Type {
		case msgChannelData, msgChannelExtData:
			if ch != nil {
				if pm.Type == msgChannelData {
					ch.Write(pm.Data)
				} else {
					ch.Stderr().Write(pm.Data)
				}
			}
			n := uint32(len(pm.Data))
			c.mu.Lock()
			c.ourWin += n
			open := !c.closeRcvd && !c.dead
			c.mu.Unlock()
			if open && n > 0 {
				c.pc.send((&proxyMsg{Type: msgChannelWindowAdj, Recipient: peer, Window: n}).marshal())
			}
		case msgChannelEOF:
			if ch != nil {
				ch.CloseWrite()
			}
		case msgChannelRequest:
			ok := c.request(ch, pm)
			if pm.WantReply {
				c.mu.Lock()
				open := !c.closeRcvd && !c.dead
				c.mu.Unlock()
				if open {
					t := byte(msgChannelFailure)
					if ok {
						t = msgChannelSuccess
					}
					c.pc.send((&proxyMsg{Type: t, Recipient: peer}).marshal())
				}
			}
		case msgChannelClose:
			if ch != nil {
				ch.Close()
			} else {
				c.sendClose()
			}
			return
		}
	}
}

// request passes one of the client's channel requests upstream.
func (c *proxyChan) request(ch ssh.Channel, pm *proxyMsg) bool {
	switch pm.Name {
	case "x11-req":
		// As OpenSSH's master: the server's X11 channels cannot be told
		// apart by session, so a proxy client gets none.
		c.pc.log.Debug("mux proxy: refused " + pm.Name)
		return false
	case "auth-agent-req@openssh.com":
		// The server's agent channels go to the one proxy client that
		// asked for them; see routeAgent.
		if !c.pc.opts.Agent {
			c.pc.log.Debug("mux proxy: refused " + pm.Name + ": the client does not take agent channels in proxy mode")
			return false
		}
		if !c.pc.h.claimAgent(c.pc) {
			c.pc.log.Debug("mux proxy: refused " + pm.Name + ": the master forwards its own agent")
			return false
		}
	case "exec":
		c.mu.Lock()
		preamble := c.preamble
		c.mu.Unlock()
		if preamble != "" {
			p := &parser{b: pm.Rest}
			cmd := p.bytes()
			if p.err == nil {
				pm.Rest = new(builder).bytes(append([]byte(preamble), cmd...)).b
			}
		}
	}
	if ch == nil {
		return false
	}
	ok, err := ch.SendRequest(pm.Name, pm.WantReply, pm.Rest)
	return err == nil && ok
}

// pump sends what the server wrote on r to the client as DATA (ext 0) or
// EXTENDED_DATA, never beyond the client's window or packet size.
func (c *proxyChan) pump(r io.Reader, ext uint32) {
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			k, peer := c.reserve(len(data))
			if k == 0 {
				break
			}
			m := &proxyMsg{Type: msgChannelData, Recipient: peer, Data: data[:k]}
			if ext != 0 {
				m.Type, m.Code = msgChannelExtData, ext
			}
			c.pc.send(m.marshal())
			data = data[k:]
		}
		if err != nil {
			return
		}
	}
}

// reserve waits for the client's window and takes up to n bytes of it;
// zero when the channel is closed.
func (c *proxyChan) reserve(n int) (int, uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.peerWin == 0 && !c.closeRcvd && !c.dead {
		c.cond.Wait()
	}
	if c.closeRcvd || c.dead || c.closeSent {
		return 0, 0
	}
	n = min(n, int(c.peerWin), int(max(c.peerMax, 1)))
	c.peerWin -= uint32(n)
	return n, c.peer
}

// upstreamRequests passes the server's channel requests to the client.
// The exit status (or signal) waits until the output before it has gone
// and the EOF; the server's close becomes the client's last message.
func (c *proxyChan) upstreamRequests(reqs <-chan *ssh.Request, outputs *sync.WaitGroup) {
	for r := range reqs {
		if r.Type == "exit-status" || r.Type == "exit-signal" {
			outputs.Wait()
			c.sendEOF()
		}
		c.mu.Lock()
		open := !c.closeRcvd && !c.dead && !c.closeSent
		if open && r.WantReply {
			c.replies = append(c.replies, r)
		}
		peer := c.peer
		c.mu.Unlock()
		if !open {
			if r.WantReply {
				r.Reply(false, nil)
			}
			continue
		}
		c.pc.send((&proxyMsg{Type: msgChannelRequest, Recipient: peer, Name: r.Type, WantReply: r.WantReply, Rest: r.Payload}).marshal())
	}
	outputs.Wait()
	c.sendEOF()
	c.sendClose()
}

func (c *proxyChan) sendEOF() {
	c.mu.Lock()
	send := !c.eofSent && !c.closeRcvd && !c.closeSent && !c.dead
	c.eofSent = true
	peer := c.peer
	c.mu.Unlock()
	if send {
		c.pc.send((&proxyMsg{Type: msgChannelEOF, Recipient: peer}).marshal())
	}
}

func (c *proxyChan) sendClose() {
	c.mu.Lock()
	if c.closeSent || c.dead {
		c.mu.Unlock()
		return
	}
	c.closeSent = true
	c.cond.Broadcast()
	peer := c.peer
	pending := c.replies
	c.replies = nil
	if c.closeRcvd {
		c.pc.free(c)
	}
	c.mu.Unlock()
	for _, r := range pending {
		r.Reply(false, nil)
	}
	c.pc.send((&proxyMsg{Type: msgChannelClose, Recipient: peer}).marshal())
}

// serveGlobals answers the client's global requests in order.
func (pc *proxyConn) serveGlobals() {
	for pm := range pc.globals {
		ok, resp := pc.global(pm)
		if !pm.WantReply {
			continue
		}
		if ok {
			pc.send(append([]byte{msgRequestSuccess}, resp...))
		} else {
			pc.send([]byte{msgRequestFailure})
		}
	}
}

func (pc *proxyConn) global(pm *proxyMsg) (bool, []byte) {
	p := &parser{b: pm.Rest}
	switch pm.Name {
	case "tcpip-forward", "streamlocal-forward@openssh.com":
		f := &proxyFwd{}
		if pm.Name == "tcpip-forward" {
			f.host, f.port = p.str(), p.u32()
			if p.err == nil && f.port > 65535 {
				p.err = errMalformed
			}
		} else {
			f.path = p.str()
		}
		if p.err != nil || pc.h.RemoteForward == nil {
			return false, nil
		}
		stop, allocated, err := pc.h.RemoteForward(f.host, f.port, f.path, pc.offer)
		if err != nil {
			pc.log.Debug("mux proxy: "+pm.Name, "err", err)
			return false, nil
		}
		f.stop, f.allocated = stop, allocated
		pc.mu.Lock()
		if pc.ended {
			pc.mu.Unlock()
			stop.Close()
			return false, nil
		}
		pc.fwds = append(pc.fwds, f)
		pc.mu.Unlock()
		if pm.Name == "tcpip-forward" && f.port == 0 {
			return true, new(builder).u32(allocated).b
		}
		return true, nil
	case "cancel-tcpip-forward", "cancel-streamlocal-forward@openssh.com":
		var host, path string
		var port uint32
		if pm.Name == "cancel-tcpip-forward" {
			host, port = p.str(), p.u32()
		} else {
			path = p.str()
		}
		if p.err != nil {
			return false, nil
		}
		pc.mu.Lock()
		var found *proxyFwd
		for i, f := range pc.fwds {
			if f.path == path && f.host == host && (f.path != "" || f.port == port || f.port == 0 && f.allocated == port) {
				found = f
				pc.fwds = append(pc.fwds[:i], pc.fwds[i+1:]...)
				break
			}
		}
		pc.mu.Unlock()
		if found == nil {
			return false, nil
		}
		found.stop.Close()
		return true, nil
	case "no-more-sessions@openssh.com":
		// It would end sessions on the shared connection for everyone.
		return false, nil
	}
	ok, resp, err := pc.h.Client.SendRequest(pm.Name, pm.WantReply, pm.Rest)
	return err == nil && ok, resp
}

// teardown ends what the client had: its channels are closed upstream,
// the server's opens waiting for it refused, its remote forwards
// cancelled.
func (pc *proxyConn) teardown() {
	pc.mu.Lock()
	pc.ended = true
	close(pc.done)
	chans := make([]*proxyChan, 0, len(pc.chans))
	for _, c := range pc.chans {
		chans = append(chans, c)
	}
	pc.chans = map[uint32]*proxyChan{}
	fwds := pc.fwds
	pc.fwds = nil
	pc.mu.Unlock()
	for _, f := range fwds {
		f.stop.Close()
	}
	pc.h.releaseAgent(pc)
	for _, c := range chans {
		c.mu.Lock()
		c.dead = true
		c.queue = nil
		ch := c.ch
		pending := c.replies
		c.replies = nil
		c.cond.Broadcast()
		c.mu.Unlock()
		if ch != nil {
			ch.Close()
		}
		for _, r := range pending {
			r.Reply(false, nil)
		}
	}
	pc.proxyOut.close()
	pc.c.Close()
}

// proxyOut writes framed proxy-mode packets to a connection from a queue,
// so that no reader ever blocks on a peer that is not reading; a peer
// that lets proxyMaxQueued bytes pile up is dropped.
type proxyOut struct {
	oc      net.Conn
	wmu     sync.Mutex
	wcond   *sync.Cond
	out     []byte // framed packets not written yet
	wclosed bool
}

func (o *proxyOut) init(c net.Conn) {
	o.oc = c
	o.wcond = sync.NewCond(&o.wmu)
	crash.Go(o.writer)
}

// send queues one message (type byte and payload).
func (o *proxyOut) send(m []byte) error {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	if o.wclosed {
		return errProxyClosed
	}
	if len(o.out) > proxyMaxQueued {
		o.wclosed = true
		o.oc.Close()
		o.wcond.Broadcast()
		return errors.New("proxy peer does not read")
	}
	o.out = appendProxyPacket(o.out, m)
	o.wcond.Signal()
	return nil
}

// close stops the writer once what is queued has been written.
func (o *proxyOut) close() {
	o.wmu.Lock()
	o.wclosed = true
	o.wcond.Broadcast()
	o.wmu.Unlock()
}

func (o *proxyOut) writer() {
	var buf []byte
	for {
		o.wmu.Lock()
		for len(o.out) == 0 && !o.wclosed {
			o.wcond.Wait()
		}
		if len(o.out) == 0 {
			o.wmu.Unlock()
			return
		}
		buf, o.out = o.out, buf[:0]
		o.wmu.Unlock()
		if _, err := o.oc.Write(buf); err != nil {
			o.wmu.Lock()
			o.wclosed = true
			o.out = nil
			o.wmu.Unlock()
			o.oc.Close()
			return
		}
	}
}

const agentChannelType = "auth-agent@openssh.com"

// claimAgent records that pc asked for agent forwarding on a session, and
// takes the server's agent channels for the proxy clients unless the
// master's own connection serves them (then false: the request is
// refused, and the client's sessions get no agent).
func (h *SSHHandler) claimAgent(pc *proxyConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.agentState == 0 {
		chans := h.Client.HandleChannelOpen(agentChannelType)
		if chans == nil {
			h.agentState = -1
		} else {
			h.agentState = 1
			h.agentClients = map[*proxyConn]int{}
			crash.Go(func() { h.routeAgent(chans) })
		}
	}
	if h.agentState < 0 {
		return false
	}
	h.agentClients[pc]++
	return true
}

func (h *SSHHandler) releaseAgent(pc *proxyConn) {
	h.mu.Lock()
	delete(h.agentClients, pc)
	h.mu.Unlock()
}

// routeAgent hands each agent channel the server opens to the proxy
// client that asked for agent forwarding. The channel does not say which
// session it is for (OpenSSH's master forwards no agent to proxy clients
// for that reason): with no such client it is refused, and with more than
// one at a time too, rather than given to the wrong one.
func (h *SSHHandler) routeAgent(chans <-chan ssh.NewChannel) {
	for nc := range chans {
		h.mu.Lock()
		var only *proxyConn
		for pc := range h.agentClients {
			only = pc
		}
		n := len(h.agentClients)
		h.mu.Unlock()
		switch {
		case n == 0:
			nc.Reject(ssh.Prohibited, "agent forwarding not requested")
		case n > 1:
			h.log().Warn("mux proxy: agent channel refused: several proxy clients forward their agents")
			nc.Reject(ssh.Prohibited, "agent forwarding ambiguous on a shared connection")
		default:
			crash.Go(func() { only.offer(nc) })
		}
	}
}
