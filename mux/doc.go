// Package mux speaks OpenSSH's connection-multiplexing protocol
// (PROTOCOL.mux, version 4) both ways: as a client of a master's control
// socket (Dial, Client) and as a master serving OpenSSH's own clients
// (Listen, Server, Handler), so `ssh -S`, `ssh -O`, scp and rsync can share
// an rssh connection and rssh can share an OpenSSH one.
//
// It owns the wire codec (bounded lengths), descriptor passing
// (SCM_RIGHTS), the control socket's safety (0600, a directory only the
// user or root can write, peers whose euid is neither ours nor 0 refused,
// a ControlPath too long for sun_path is an error) and ControlPath's %
// tokens. It does not own the SSH connection: a master's real work goes
// through a Handler (NewSSHHandler backs one with an *ssh.Client), and the
// environment each new session gets, the token included, is computed by
// the caller through SSHHandler.Env.
//
// Proxy mode (MUX_C_PROXY, ssh -O proxy) is spoken both ways: a master's
// SSHHandler relays a proxy client's SSH connection protocol (RFC 4254, in
// OpenSSH's unencrypted mux-proxy framing) onto its connection with flow
// control of its own on each side (proxy.go), and Client.Proxy gives a
// client an ssh.Conn over the socket for x/crypto's ssh.NewClient
// (proxyclient.go). The codec is proxywire.go.
package mux
