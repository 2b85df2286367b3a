package config

import (
	"fmt"
	"strings"
)

// Forward is one parsed LocalForward, RemoteForward or DynamicForward (or
// -L, -R, -D argument). An end on a Unix socket has its Path set and no
// host or port.
type Forward struct {
	// ListenHost is the bind address as given; HasListenHost tells an
	// explicit "" (all interfaces, like "*") from none given (loopback
	// unless GatewayPorts).
	ListenHost    string
	HasListenHost bool
	ListenPort    int // 0 for a remote forward asks the server to pick
	ListenPath    string

	ConnectHost string // "" for a dynamic (SOCKS) forward
	ConnectPort int
	ConnectPath string
}

// Dynamic reports whether f is a SOCKS forward (-D, or -R with a port only).
func (f Forward) Dynamic() bool { return f.ConnectHost == "" && f.ConnectPath == "" }

// ForwardKind is which of the three forwarding keywords a spec belongs to.
type ForwardKind int

const (
	LocalForward ForwardKind = iota
	RemoteForward
	DynamicForward
)

// ParseForward parses a forwarding spec in the command-line form
// ("[bind:]port:host:hostport", paths allowed) or as Config holds it
// ("[bind]:port [host]:hostport", the two words ssh -G prints). A
// RemoteForward with only a listen part is a remote dynamic forward.
func ParseForward(spec string, kind ForwardKind) (Forward, error) {
	s := strings.TrimSpace(spec)
	if a, b, ok := strings.Cut(s, " "); ok {
		s = a + ":" + strings.TrimSpace(b)
		// ssh -G prints a remote dynamic forward's missing target as
		// "[socks]:0", which parse_forward would refuse (port 0).
		if kind == RemoteForward && strings.TrimSpace(b) == "[socks]:0" {
			s = a
		}
	}
	var (
		f  forward
		ok bool
	)
	switch kind {
	case LocalForward:
		f, ok = parseForward(s, false, false)
	case DynamicForward:
		f, ok = parseForward(s, true, false)
	case RemoteForward:
		if f, ok = parseForward(s, false, true); !ok {
			f, ok = parseForward(s, true, true)
		}
	}
	if !ok {
		name := [...]string{"local", "remote", "dynamic"}[kind]
		return Forward{}, fmt.Errorf("bad %s forwarding specification '%s'", name, spec)
	}
	out := Forward{
		ListenHost: f.listenHost, HasListenHost: f.hasListenHost, ListenPath: f.listenPath,
		ConnectPath: f.connectPath,
	}
	if f.listenPort != portStreamLocal {
		out.ListenPort = f.listenPort
	}
	if f.hasConnHost && !(f.connectHost == "socks" && f.connectPort == 0) {
		out.ConnectHost, out.ConnectPort = f.connectHost, f.connectPort
	}
	return out, nil
}
