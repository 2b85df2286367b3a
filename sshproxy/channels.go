package sshproxy

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
)

// openChannels are a connection's open channels as ~# lists them: the
// session and every forwarded connection (local, dynamic, remote, agent).
// Listeners are not channels here, as OpenSSH leaves them out of its list.
type openChannels struct {
	mu   sync.Mutex
	byID map[int]*openChannel
}

// openChannel is one entry; its name may change (a SOCKS connection is
// named by its target once it has one).
type openChannel struct {
	id    int
	ctype string // the SSH channel type: "session", "direct-tcpip", …
	name  string // as OpenSSH's remote_name, guarded by openChannels.mu
	set   *openChannels
}

// track records an open channel under the lowest free number, as
// OpenSSH reuses its channel slots; close removes it.
func (c *Conn) track(ctype, name string) *openChannel {
	s := &c.chans
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[int]*openChannel{}
	}
	id := 0
	for s.byID[id] != nil {
		id++
	}
	ch := &openChannel{id: id, ctype: ctype, name: name, set: s}
	s.byID[id] = ch
	return ch
}

func (ch *openChannel) rename(name string) {
	ch.set.mu.Lock()
	defer ch.set.mu.Unlock()
	ch.name = name
}

func (ch *openChannel) close() {
	ch.set.mu.Lock()
	defer ch.set.mu.Unlock()
	if ch.set.byID[ch.id] == ch {
		delete(ch.set.byID, ch.id)
	}
}

// openMessage is OpenSSH's channel_open_message for ~#, with \r\n line
// ends for a raw terminal. OpenSSH's parenthesis holds its internal
// channel state (buffers, file descriptors); rssh has none of that and
// shows the channel type only.
func (c *Conn) openMessage() string {
	s := &c.chans
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var b strings.Builder
	b.WriteString("The following connections are open:\r\n")
	for _, id := range ids {
		ch := s.byID[id]
		fmt.Fprintf(&b, "  #%d %.300s (%s)\r\n", id, ch.name, ch.ctype)
	}
	return b.String()
}

// forwardedName is how OpenSSH's port_open_helper names a connection
// accepted on a local listener: "direct-tcpip: listening port 8080 for
// db port 5432, connect from 127.0.0.1 port 40000 to 127.0.0.1 port
// 8080". Unix sockets have no ports; they are named by path.
func forwardedName(ctype string, listen net.Addr, target string, local net.Conn) string {
	var b strings.Builder
	b.WriteString(ctype)
	b.WriteString(": ")
	if a, ok := listen.(*net.TCPAddr); ok {
		fmt.Fprintf(&b, "listening port %d", a.Port)
	} else {
		fmt.Fprintf(&b, "listening path %s", listen)
	}
	if host, port, err := net.SplitHostPort(target); err == nil {
		fmt.Fprintf(&b, " for %.100s port %s", host, port)
	} else {
		fmt.Fprintf(&b, " for %.100s", target)
	}
	from, fok := local.RemoteAddr().(*net.TCPAddr)
	to, tok := local.LocalAddr().(*net.TCPAddr)
	if fok && tok {
		fmt.Fprintf(&b, ", connect from %.200s port %d to %.100s port %d", from.IP, from.Port, to.IP, to.Port)
	}
	return b.String()
}
