package config

import (
	"fmt"
	"strconv"
	"strings"
)

// parseJump is readconf.c's parse_jump: it checks every hop of a
// ProxyJump list and, when the line applies and neither ProxyCommand nor
// ProxyJump is set yet, keeps the last hop parsed and the hops before it
// verbatim.
func (r *resolver) parseJump(s string, active bool, pos Pos) error {
	o := r.o
	active = active && o.proxyCommand == nil && o.jumpHost == nil
	sdup := s
	if i := strings.IndexByte(sdup, '#'); i >= 0 {
		sdup = sdup[:i]
	}
	sdup = strings.TrimRight(sdup, " \t\r\n")
	var user, host *string
	port := -1
	first := active
	for !strings.EqualFold(s, "none") {
		cp := sdup
		last := true
		if i := strings.LastIndexByte(sdup, ','); i >= 0 {
			cp = sdup[i+1:]
			sdup = sdup[:i]
			last = false
		}
		u, h, p, err := parseHop(cp)
		if err != nil {
			return errorf(pos, "invalid ProxyJump \"%s\"", s)
		}
		if first {
			user, host, port = u, &h, p
		}
		first = false
		if last {
			break
		}
	}
	if !active {
		return nil
	}
	o.jumpPos = pos
	if strings.EqualFold(s, "none") {
		none := "none"
		o.jumpHost, o.jumpPort = &none, 0
		return nil
	}
	o.jumpUser, o.jumpHost, o.jumpPort = user, host, port
	o.proxyCommand = &sval{"none", pos}
	if i := strings.LastIndexByte(s, ','); i > 0 {
		extra := s[:i]
		o.jumpExtra = &extra
	}
	return nil
}

// parseHop parses one hop, "ssh://[user@]host[:port]" or
// "[user@]host[:port]"; port is -1 when absent.
func parseHop(s string) (user *string, host string, port int, err error) {
	u, h, p, isURI, uerr := parseSSHURI(s)
	if isURI {
		if uerr != nil {
			return nil, "", 0, uerr
		}
		return u, h, p, nil
	}
	return parseUserHostPort(s)
}

var errBadHop = fmt.Errorf("invalid host specification")

// parseUserHostPort is parse_user_host_port: [user@]host[:port], the host
// possibly in [brackets].
func parseUserHostPort(s string) (*string, string, int, error) {
	var user *string
	tmp := s
	if i := strings.LastIndexByte(tmp, '@'); i >= 0 {
		if i == 0 {
			return nil, "", 0, errBadHop
		}
		u := tmp[:i]
		user = &u
		tmp = tmp[i+1:]
	}
	h, rest, delim, ok := hpdelim2(tmp)
	if !ok || delim == '/' || h == "" {
		return nil, "", 0, errBadHop
	}
	port := -1
	if rest != nil && *rest != "" {
		if port = a2port(*rest); port <= 0 {
			return nil, "", 0, errBadHop
		}
	}
	return user, cleanHostname(h), port, nil
}

// parseSSHURI is parse_ssh_uri: isURI is false when s is not ssh://…; a
// path is not allowed.
func parseSSHURI(s string) (user *string, host string, port int, isURI bool, err error) {
	const scheme = "ssh://"
	if !strings.HasPrefix(s, scheme) {
		return nil, "", 0, false, nil
	}
	tmp := s[len(scheme):]
	port = -1
	if i := strings.IndexByte(tmp, '@'); i >= 0 {
		u := tmp[:i]
		if j := strings.IndexByte(u, ';'); j >= 0 {
			u = u[:j]
		}
		if u == "" {
			return nil, "", 0, true, errBadHop
		}
		d, ok := urlDecode(u)
		if !ok {
			return nil, "", 0, true, errBadHop
		}
		user = &d
		tmp = tmp[i+1:]
	}
	h, rest, delim, ok := hpdelim2(tmp)
	if !ok || h == "" {
		return nil, "", 0, true, errBadHop
	}
	host = cleanHostname(h)
	if !validDomain(host) {
		return nil, "", 0, true, errBadHop
	}
	if rest != nil && *rest != "" {
		r := *rest
		if delim == ':' {
			p := r
			r = ""
			hasPath := false
			if j := strings.IndexByte(p, '/'); j >= 0 {
				r = p[j+1:]
				p = p[:j]
				hasPath = true
			}
			if port = a2port(p); port <= 0 {
				return nil, "", 0, true, errBadHop
			}
			if !hasPath {
				r = ""
			}
		}
		if r != "" {
			return nil, "", 0, true, errBadHop // a path is not allowed
		}
	}
	return user, host, port, true, nil
}

func urlDecode(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), true
}

// formatJump renders the ProxyJump value as ssh -G prints it: the extra
// hops verbatim, then the last hop with a numeric host in brackets.
func formatJump(o *options) string {
	h := *o.jumpHost
	numeric := strings.Contains(h, ":") || strings.Trim(h, "1234567890.") == ""
	var b strings.Builder
	if o.jumpExtra != nil {
		b.WriteString(*o.jumpExtra + ",")
	}
	if o.jumpUser != nil {
		b.WriteString(*o.jumpUser + "@")
	}
	if numeric {
		b.WriteString("[" + h + "]")
	} else {
		b.WriteString(h)
	}
	if o.jumpPort > 0 {
		b.WriteString(":" + strconv.Itoa(o.jumpPort))
	}
	return b.String()
}

// ParseProxyJump parses a ProxyJump list ("[user@]host[:port]" or
// "ssh://[user@]host[:port]" hops, comma-separated, IPv6 in brackets) as
// OpenSSH does. Port is 0 where not given.
func ParseProxyJump(spec string) ([]Jump, error) {
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	var out []Jump
	for _, hop := range strings.Split(spec, ",") {
		u, h, p, err := parseHop(hop)
		if err != nil {
			return nil, fmt.Errorf("invalid proxyjump hop %q", hop)
		}
		j := Jump{Host: h}
		if u != nil {
			j.User = *u
		}
		if p > 0 {
			j.Port = p
		}
		out = append(out, j)
	}
	return out, nil
}
