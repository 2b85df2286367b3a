package sshproxy

import (
	"fmt"
	"io"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/config"

	"github.com/rssh/rssh/internal/crash"
)

// AgentSocket is the agent rssh authenticates with: IdentityAgent, else
// SSH_AUTH_SOCK; "" for none.
func (cl *Client) AgentSocket(cfg *config.Config) string { return cl.agentSocket(cfg) }

// AgentForwardSocket is the local agent ForwardAgent forwards: "yes" the
// one rssh authenticates with (IdentityAgent, else SSH_AUTH_SOCK, as
// OpenSSH, which exports IdentityAgent as SSH_AUTH_SOCK), "$VAR" that
// variable, otherwise the path given; "" for "no" or no agent.
func (cl *Client) AgentForwardSocket(cfg *config.Config) string {
	fa := cfg.ForwardAgent
	switch {
	case fa == "" || fa == "no":
		return ""
	case fa == "yes":
		return cl.agentSocket(cfg)
	case strings.HasPrefix(fa, "$"):
		return cl.Getenv(strings.Trim(fa[1:], "{}"))
	}
	return fa
}

const agentChannel = "auth-agent@openssh.com"

// agentChannelName is what OpenSSH calls an agent channel in ~#.
const agentChannelName = "authentication agent connection"

// ServeAgent answers the server's auth-agent@openssh.com channels, each
// with a fresh connection to the agent at socket. Unlike x/crypto's
// agent.ForwardToRemote, the agent is dialled before the channel is
// accepted, so a missing agent is a clean open failure for the remote
// ssh-add rather than a channel left open with nobody behind it.
// A session must still ask for forwarding (Session.ForwardAgent).
func (c *Conn) ServeAgent(socket string) {
	c.ServeAgentWith(socket, false, nil)
}

// AgentFilter serves one forwarded agent channel itself; local is a
// connection to the user's agent, or nil when none is forwarded.
type AgentFilter func(ch io.ReadWriter, local io.ReadWriter) error

// ServeAgentWith answers the server's agent channels as ServeAgent does,
// but through filter when it is not nil (secret forwarding answers its own
// extension and passes the rest on). With optional set, a missing or
// unreachable local agent is no reason to refuse the channel: the filter
// runs with local nil.
func (c *Conn) ServeAgentWith(socket string, optional bool, filter AgentFilter) {
	chans := c.HandleChannelOpen(agentChannel)
	if chans == nil {
		return // already served
	}
	crash.Go(func() {
		for nc := range chans {
			crash.Go(func() { c.serveAgentChannel(nc, socket, optional, filter) })
		}
	})
}

func (c *Conn) serveAgentChannel(nc ssh.NewChannel, socket string, optional bool, filter AgentFilter) {
	enter(cbAgentChannel)
	var local net.Conn
	if socket != "" {
		var err error
		if local, err = net.Dial("unix", socket); err != nil && !optional {
			nc.Reject(ssh.ConnectionFailed, fmt.Sprintf("cannot connect to the local agent: %v", unwrapOp(err)))
			return
		}
	} else if !optional {
		nc.Reject(ssh.ConnectionFailed, "no local agent")
		return
	}
	if filter != nil {
		c.filterAgentChannel(nc, local, filter)
		return
	}
	if local == nil {
		nc.Reject(ssh.ConnectionFailed, "no local agent")
		return
	}
	// As OpenSSH's client_request_agent: bind the connection to this
	// server as a forwarding hop, so keys added with ssh-add -h are used
	// only where their constraints allow. A serial client (no Close) reads
	// only its own reply and leaves the stream to the pipe below.
	if c.kex != nil && c.kexLog != nil {
		bindAgent(agent.NewClient(struct{ io.ReadWriter }{local}), c.kex, c.SessionID(), true, c.kexLog)
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		local.Close()
		return
	}
	crash.Go(func() { ssh.DiscardRequests(reqs) })
	open := c.track(agentChannelName, agentChannelName)
	defer open.close()
	pipe(&channelConn{ch}, local.(*net.UnixConn))
}

func (c *Conn) filterAgentChannel(nc ssh.NewChannel, local net.Conn, filter AgentFilter) {
	var up io.ReadWriter
	if local != nil {
		defer local.Close()
		if c.kex != nil && c.kexLog != nil {
			bindAgent(agent.NewClient(struct{ io.ReadWriter }{local}), c.kex, c.SessionID(), true, c.kexLog)
		}
		up = local
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	crash.Go(func() { ssh.DiscardRequests(reqs) })
	open := c.track(agentChannelName, agentChannelName)
	defer open.close()
	filter(ch, up)
}

// channelConn gives a channel the CloseWrite pipe uses.
type channelConn struct{ ssh.Channel }

// halfCloser is a stream whose sending side can be shut alone.
type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// pipe copies both ways until both sides have sent EOF, passing each EOF
// on as a half-close, then closes both. An error either way (a reset, a
// closed channel) closes both at once, so the other copy cannot wait
// forever on a peer that is gone.
func pipe(a, b halfCloser) {
	done := make(chan struct{}, 2)
	cp := func(dst, src halfCloser) {
		if _, err := io.Copy(dst, src); err != nil {
			a.Close()
			b.Close()
		} else {
			dst.CloseWrite()
		}
		done <- struct{}{}
	}
	crash.Go(func() { cp(a, b) })
	crash.Go(func() { cp(b, a) })
	<-done
	<-done
	a.Close()
	b.Close()
}
