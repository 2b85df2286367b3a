//go:build unix

package mux

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/crash"
)

// Proxy puts the control connection in proxy mode (ssh -O proxy) and
// returns the SSH connection spoken over it, for ssh.NewClient: the
// client then opens its own channels and sends its own requests, which
// the master relays. Requests the master's side sends that want a reply
// are answered with a failure here (x/crypto's Request cannot be answered
// from outside the package), as a client answers those it does not know.
// The Client is the connection's from here: closing the ssh.Conn closes it.
//
// OpenSSH's master passes on only tcpip-forward of the global requests,
// never returns the server's reply, and drops a proxy client that sends
// any other: through it, a tcpip-forward is sent without asking for a
// reply and answered here as granted (one for port 0 is refused here, as
// its port could never be learnt), and the other requests are answered
// here as refused without being sent.
func (c *Client) Proxy() (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	r, err := c.call(msg(cProxy).u32(c.next).b)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.Type != sProxy {
		return nil, nil, nil, unexpected(r)
	}
	_, replies := c.Extension(extProxyReplies)
	pc := &proxyClient{c: c.conn, chans: map[uint32]*clientChan{}, noReplies: !replies,
		incoming: make(chan ssh.NewChannel, 16), reqs: make(chan *ssh.Request), done: make(chan struct{})}
	pc.proxyOut.init(c.conn)
	crash.Go(pc.read)
	return pc, pc.incoming, pc.reqs, nil
}

// proxyClient is the client's end of proxy mode: an ssh.Conn whose
// transport is the master.
type proxyClient struct {
	c net.Conn
	proxyOut
	noReplies bool // OpenSSH's master: see Proxy

	mu       sync.Mutex
	chans    map[uint32]*clientChan
	nextID   uint32
	globals  []chan globalReply // our global requests awaiting replies, in order
	incoming chan ssh.NewChannel
	reqs     chan *ssh.Request
	done     chan struct{}
	err      error
	closed   bool
}

type globalReply struct {
	ok      bool
	payload []byte
}

var _ ssh.Conn = (*proxyClient)(nil)

func (pc *proxyClient) User() string          { return "" }
func (pc *proxyClient) SessionID() []byte     { return nil }
func (pc *proxyClient) ClientVersion() []byte { return nil }
func (pc *proxyClient) ServerVersion() []byte { return nil }
func (pc *proxyClient) RemoteAddr() net.Addr  { return pc.c.RemoteAddr() }
func (pc *proxyClient) LocalAddr() net.Addr   { return pc.c.LocalAddr() }

func (pc *proxyClient) Close() error {
	pc.proxyOut.close()
	return pc.c.Close()
}

func (pc *proxyClient) Wait() error {
	<-pc.done
	return pc.err
}

func (pc *proxyClient) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	if pc.noReplies {
		p := &parser{b: payload}
		p.str()
		if name != "tcpip-forward" || p.u32() == 0 || p.err != nil {
			return false, nil, nil
		}
		m := (&proxyMsg{Type: msgGlobalRequest, Name: name, Rest: payload}).marshal()
		return true, nil, pc.send(m)
	}
	m := (&proxyMsg{Type: msgGlobalRequest, Name: name, WantReply: wantReply, Rest: payload}).marshal()
	if !wantReply {
		return false, nil, pc.send(m)
	}
	reply := make(chan globalReply, 1)
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		return false, nil, io.EOF
	}
	pc.globals = append(pc.globals, reply)
	err := pc.send(m) // under mu: replies come in the order requests left
	pc.mu.Unlock()
	if err != nil {
		return false, nil, err
	}
	select {
	case r := <-reply:
		return r.ok, r.payload, nil
	case <-pc.done:
		return false, nil, io.EOF
	}
}

func (pc *proxyClient) OpenChannel(name string, data []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	ch, err := pc.newChan()
	if err != nil {
		return nil, nil, err
	}
	opened := make(chan *proxyMsg, 1)
	ch.mu.Lock()
	ch.opened = opened
	ch.mu.Unlock()
	if err := pc.send((&proxyMsg{Type: msgChannelOpen, Name: name, Sender: ch.id,
		Window: proxyWindow, MaxPacket: proxyMaxPacket, Rest: data}).marshal()); err != nil {
		pc.forget(ch)
		return nil, nil, err
	}
	var pm *proxyMsg
	select {
	case pm = <-opened:
	case <-pc.done:
		return nil, nil, io.EOF
	}
	if pm.Type == msgChannelOpenFailure {
		pc.forget(ch)
		return nil, nil, &ssh.OpenChannelError{Reason: ssh.RejectionReason(pm.Code), Message: string(pm.Data)}
	}
	return ch, ch.reqs, nil
}

func (pc *proxyClient) newChan() (*clientChan, error) {
	ch := &clientChan{pc: pc, ourWin: proxyWindow, reqs: make(chan *ssh.Request, 16)}
	ch.cond = sync.NewCond(&ch.mu)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return nil, io.EOF
	}
	if len(pc.chans) >= proxyMaxChannels {
		return nil, errors.New("too many channels")
	}
	ch.id = freeID(&pc.nextID, pc.chans)
	pc.chans[ch.id] = ch
	return ch, nil
}

func (pc *proxyClient) forget(ch *clientChan) {
	pc.mu.Lock()
	delete(pc.chans, ch.id)
	pc.mu.Unlock()
}

// read dispatches the master's packets until the connection ends.
func (pc *proxyClient) read() {
	r := bufio.NewReaderSize(pc.c, 64*1024)
	var err error
	for err == nil {
		var m []byte
		if m, err = readProxyPacket(r); err != nil {
			break
		}
		var pm *proxyMsg
		if pm, err = parseProxyMsg(m); err != nil {
			break
		}
		err = pc.dispatch(pm)
	}
	if errors.Is(err, net.ErrClosed) {
		err = io.EOF
	}
	pc.mu.Lock()
	pc.closed = true
	pc.err = err
	chans := pc.chans
	pc.chans = map[uint32]*clientChan{}
	pc.globals = nil
	pc.mu.Unlock()
	for _, ch := range chans {
		ch.gone()
	}
	close(pc.done)
	close(pc.incoming)
	close(pc.reqs)
	pc.Close()
}

func (pc *proxyClient) dispatch(pm *proxyMsg) error {
	switch pm.Type {
	case msgGlobalRequest:
		if pm.WantReply {
			return pc.send([]byte{msgRequestFailure})
		}
		return nil
	case msgRequestSuccess, msgRequestFailure:
		pc.mu.Lock()
		if len(pc.globals) == 0 {
			pc.mu.Unlock()
			return errors.New("global reply to no request")
		}
		reply := pc.globals[0]
		pc.globals = pc.globals[1:]
		pc.mu.Unlock()
		reply <- globalReply{ok: pm.Type == msgRequestSuccess, payload: pm.Rest}
		return nil
	case msgChannelOpen:
		nc := &clientNewChannel{pc: pc, pm: pm}
		select {
		case pc.incoming <- nc:
		default:
			// Nobody takes them: refused, as x/crypto refuses them.
			return pc.send((&proxyMsg{Type: msgChannelOpenFailure, Recipient: pm.Sender,
				Code: uint32(ssh.ResourceShortage), Data: []byte("too many pending channels")}).marshal())
		}
		return nil
	}
	pc.mu.Lock()
	ch := pc.chans[pm.Recipient]
	pc.mu.Unlock()
	if ch == nil {
		return fmt.Errorf("message type %d for unknown channel %d", pm.Type, pm.Recipient)
	}
	return ch.handle(pm)
}

// clientChan is one channel of the proxy client.
type clientChan struct {
	pc   *proxyClient
	id   uint32
	reqs chan *ssh.Request

	mu         sync.Mutex
	cond       *sync.Cond
	opened     chan *proxyMsg
	peer       uint32
	peerWin    uint32
	peerMax    uint32
	ourWin     uint32 // what the master may still send
	consumed   uint32 // read but not yet given back as window
	stdout     []byte
	stderr     []byte
	eof        bool // the master sent EOF or CLOSE
	closeRcvd  bool
	closeSent  bool
	eofSent    bool
	replies    []chan bool // our requests awaiting replies
	reqsClosed bool
}

var _ ssh.Channel = (*clientChan)(nil)

func (ch *clientChan) handle(pm *proxyMsg) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closeRcvd {
		return fmt.Errorf("message type %d for channel %d after its close", pm.Type, ch.id)
	}
	switch pm.Type {
	case msgChannelOpenConfirm, msgChannelOpenFailure:
		if ch.opened == nil {
			return fmt.Errorf("open answer for channel %d not opened", ch.id)
		}
		if pm.Type == msgChannelOpenConfirm {
			ch.peer, ch.peerWin, ch.peerMax = pm.Sender, pm.Window, pm.MaxPacket
		}
		ch.opened <- pm
		ch.opened = nil
		return nil
	}
	if ch.opened != nil {
		return fmt.Errorf("message type %d for channel %d before its confirmation", pm.Type, ch.id)
	}
	switch pm.Type {
	case msgChannelWindowAdj:
		if uint64(ch.peerWin)+uint64(pm.Window) > 1<<32-1 {
			ch.peerWin = 1<<32 - 1
		} else {
			ch.peerWin += pm.Window
		}
	case msgChannelData, msgChannelExtData:
		if uint64(len(pm.Data)) > uint64(ch.ourWin) || len(pm.Data) > proxyMaxPacket {
			return fmt.Errorf("channel %d: %d bytes of data beyond the window (%d) or packet size", ch.id, len(pm.Data), ch.ourWin)
		}
		ch.ourWin -= uint32(len(pm.Data))
		switch {
		case pm.Type == msgChannelData:
			ch.stdout = append(ch.stdout, pm.Data...)
		case pm.Code == 1:
			ch.stderr = append(ch.stderr, pm.Data...)
		default:
			ch.consumed += uint32(len(pm.Data)) // an unknown stream: dropped
		}
	case msgChannelEOF:
		ch.eof = true
	case msgChannelRequest:
		if pm.WantReply {
			// Answered here: the Request handed on cannot be answered.
			ch.pc.send((&proxyMsg{Type: msgChannelFailure, Recipient: ch.peer}).marshal())
		}
		if !ch.reqsClosed {
			r := &ssh.Request{Type: pm.Name, Payload: pm.Rest}
			ch.mu.Unlock()
			select {
			case ch.reqs <- r:
			case <-ch.pc.done:
			}
			ch.mu.Lock()
		}
	case msgChannelSuccess, msgChannelFailure:
		if len(ch.replies) == 0 {
			return fmt.Errorf("channel %d: reply to no request", ch.id)
		}
		ch.replies[0] <- pm.Type == msgChannelSuccess
		ch.replies = ch.replies[1:]
	case msgChannelClose:
		ch.closeRcvd, ch.eof = true, true
		ch.endLocked()
		if !ch.closeSent {
			ch.closeSent = true
			ch.pc.send((&proxyMsg{Type: msgChannelClose, Recipient: ch.peer}).marshal())
		}
		ch.pc.forget(ch)
	}
	ch.cond.Broadcast()
	return nil
}

// endLocked closes the requests and fails the pending replies.
func (ch *clientChan) endLocked() {
	if !ch.reqsClosed {
		ch.reqsClosed = true
		close(ch.reqs)
	}
	for _, r := range ch.replies {
		close(r)
	}
	ch.replies = nil
}

// gone is the connection's end.
func (ch *clientChan) gone() {
	ch.mu.Lock()
	ch.closeRcvd, ch.eof, ch.closeSent = true, true, true
	ch.endLocked()
	ch.cond.Broadcast()
	ch.mu.Unlock()
}

func (ch *clientChan) Read(p []byte) (int, error)  { return ch.read(p, false) }
func (ch *clientChan) Write(p []byte) (int, error) { return ch.write(p, 0) }

func (ch *clientChan) read(p []byte, ext bool) (int, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	buf := &ch.stdout
	if ext {
		buf = &ch.stderr
	}
	for len(*buf) == 0 && !ch.eof {
		ch.cond.Wait()
	}
	if len(*buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, *buf)
	*buf = (*buf)[n:]
	if len(*buf) == 0 {
		*buf = nil
	}
	ch.consumed += uint32(n)
	if ch.consumed >= proxyWindow/4 || len(ch.stdout)+len(ch.stderr) == 0 {
		if !ch.closeSent && !ch.eof {
			ch.pc.send((&proxyMsg{Type: msgChannelWindowAdj, Recipient: ch.peer, Window: ch.consumed}).marshal())
		}
		ch.ourWin += ch.consumed
		ch.consumed = 0
	}
	return n, nil
}

func (ch *clientChan) write(p []byte, ext uint32) (int, error) {
	sent := 0
	for len(p) > 0 {
		ch.mu.Lock()
		for ch.peerWin == 0 && !ch.closeSent && !ch.closeRcvd && !ch.eofSent {
			ch.cond.Wait()
		}
		if ch.closeSent || ch.closeRcvd || ch.eofSent {
			ch.mu.Unlock()
			return sent, io.EOF
		}
		k := min(len(p), int(ch.peerWin), int(max(ch.peerMax, 1)))
		ch.peerWin -= uint32(k)
		m := &proxyMsg{Type: msgChannelData, Recipient: ch.peer, Data: p[:k]}
		if ext != 0 {
			m.Type, m.Code = msgChannelExtData, ext
		}
		err := ch.pc.send(m.marshal())
		ch.mu.Unlock()
		if err != nil {
			return sent, err
		}
		sent += k
		p = p[k:]
	}
	return sent, nil
}

func (ch *clientChan) CloseWrite() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.eofSent || ch.closeSent {
		return nil
	}
	ch.eofSent = true
	ch.cond.Broadcast()
	return ch.pc.send((&proxyMsg{Type: msgChannelEOF, Recipient: ch.peer}).marshal())
}

func (ch *clientChan) Close() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closeSent {
		return nil
	}
	ch.closeSent = true
	ch.cond.Broadcast()
	return ch.pc.send((&proxyMsg{Type: msgChannelClose, Recipient: ch.peer}).marshal())
}

func (ch *clientChan) SendRequest(name string, wantReply bool, payload []byte) (bool, error) {
	ch.mu.Lock()
	if ch.closeSent || ch.closeRcvd {
		ch.mu.Unlock()
		return false, io.EOF
	}
	var reply chan bool
	if wantReply {
		reply = make(chan bool, 1)
		ch.replies = append(ch.replies, reply)
	}
	err := ch.pc.send((&proxyMsg{Type: msgChannelRequest, Recipient: ch.peer, Name: name, WantReply: wantReply, Rest: payload}).marshal())
	ch.mu.Unlock()
	if err != nil || !wantReply {
		return false, err
	}
	ok, more := <-reply
	if !more {
		return false, io.EOF
	}
	return ok, nil
}

func (ch *clientChan) Stderr() io.ReadWriter { return clientStderr{ch} }

type clientStderr struct{ ch *clientChan }

func (s clientStderr) Read(p []byte) (int, error)  { return s.ch.read(p, true) }
func (s clientStderr) Write(p []byte) (int, error) { return s.ch.write(p, 1) }

// clientNewChannel is a channel the master's side opened (a remote
// forward's connection).
type clientNewChannel struct {
	pc      *proxyClient
	pm      *proxyMsg
	decided bool
}

func (nc *clientNewChannel) ChannelType() string { return nc.pm.Name }
func (nc *clientNewChannel) ExtraData() []byte   { return nc.pm.Rest }

func (nc *clientNewChannel) Accept() (ssh.Channel, <-chan *ssh.Request, error) {
	if nc.decided {
		return nil, nil, errors.New("channel already accepted or rejected")
	}
	nc.decided = true
	ch, err := nc.pc.newChan()
	if err != nil {
		return nil, nil, err
	}
	ch.mu.Lock()
	ch.peer, ch.peerWin, ch.peerMax = nc.pm.Sender, nc.pm.Window, nc.pm.MaxPacket
	err = nc.pc.send((&proxyMsg{Type: msgChannelOpenConfirm, Recipient: nc.pm.Sender, Sender: ch.id,
		Window: proxyWindow, MaxPacket: proxyMaxPacket}).marshal())
	ch.mu.Unlock()
	if err != nil {
		nc.pc.forget(ch)
		return nil, nil, err
	}
	return ch, ch.reqs, nil
}

func (nc *clientNewChannel) Reject(reason ssh.RejectionReason, message string) error {
	if nc.decided {
		return errors.New("channel already accepted or rejected")
	}
	nc.decided = true
	return nc.pc.send((&proxyMsg{Type: msgChannelOpenFailure, Recipient: nc.pm.Sender,
		Code: uint32(reason), Data: []byte(message)}).marshal())
}
