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
	chans := c.HandleChannelOpen(agentChannel)
	if chans == nil {
		return // already served
	}
	crash.Go(func() {
		for nc := range chans {
			crash.Go(func() { c.serveAgentChannel(nc, socket) })
		}
	})
}

func (c *Conn) serveAgentChannel(nc ssh.NewChannel, socket string) {
	enter(cbAgentChannel)
	if socket == "" {
		nc.Reject(ssh.ConnectionFailed, "no local agent")
		return
	}
	local, err := net.Dial("unix", socket)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, fmt.Sprintf("cannot connect to the local agent: %v", unwrapOp(err)))
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
