package config

import "errors"

// OpenPermits is PermitRemoteOpen as ssh applies it: the destinations a
// remote dynamic forward (-R with no destination, SOCKS served by the
// client) may connect to. A nil *OpenPermits permits every destination.
type OpenPermits struct {
	perms []openPermit // none: empty; else any one matching permits
}

// openPermit is one host:port; host "*" is any host, port anyPort any port.
type openPermit struct {
	host string
	port int
}

const anyPort = -2 // channels.h's FWD_PERMIT_ANY_PORT

// ParsePermitRemoteOpen is ssh.c's ssh_init_forward_permissions: an empty
// list or "any" alone permits everything (nil), "none" alone nothing,
// anything else is a list of host:port ("[addr]:port" for IPv6), where a
// host or a port of "*" matches any. The keywords match in lower case
// only here, as in ssh, although the config accepts them in any case: a
// "NONE" that read cleanly is a host without a port now. The errors are
// ssh's, which it reports after authenticating and exits on.
func ParsePermitRemoteOpen(list []string) (*OpenPermits, error) {
	if len(list) == 0 || len(list) == 1 && list[0] == "any" {
		return nil, nil
	}
	p := &OpenPermits{}
	if len(list) == 1 && list[0] == "none" {
		return p, nil
	}
	for _, item := range list {
		host, port, delim, ok := hpdelim2(item)
		if !ok || delim == '/' {
			return nil, errors.New("missing host in permitremoteopen")
		}
		n := anyPort
		if port == nil {
			return nil, errors.New("bad port number in permitremoteopen")
		}
		if *port != "*" {
			if n = a2port(*port); n <= 0 {
				return nil, errors.New("bad port number in permitremoteopen")
			}
		}
		p.perms = append(p.perms, openPermit{host: cleanHostname(host), port: n})
	}
	return p, nil
}

// Permits is channels.c's open_match over the list, as
// rdynamic_connect_finish asks it once the SOCKS request is read: host is
// the name or the address (in inet_ntop's form) the request carried, and
// it matches exactly, case and all.
func (p *OpenPermits) Permits(host string, port int) bool {
	if p == nil {
		return true
	}
	for _, o := range p.perms {
		if (o.port == anyPort || o.port == port) && (o.host == "*" || o.host == host) {
			return true
		}
	}
	return false
}
