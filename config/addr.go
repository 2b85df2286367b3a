package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Address, host and port helpers: OpenSSH's a2port, hpdelim, hpdelim2,
// cleanhostname and valid_domain (misc.c), and the numeric-address tests
// and rewriting canonicalization does (getaddrinfo with AI_NUMERICHOST,
// inet_aton).

// a2port is OpenSSH's a2port: a number 0-65535 or a service name from the
// services database; -1 when neither.
func a2port(s string) int {
	if n, e := strtonum(s, 0, 65535); e == "" {
		return int(n)
	}
	if s == "" || strings.ContainsAny(s, " \t/") {
		return -1
	}
	p, err := net.LookupPort("tcp", s)
	if err != nil {
		return -1
	}
	return p
}

// hpdelim splits "host:port" (or "[host]:port", or host/port) as misc.c's
// hpdelim; port is nil when there is none, ok false when malformed.
func hpdelim(s string) (host string, port *string, ok bool) {
	i := 0
	if strings.HasPrefix(s, "[") {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", nil, false
		}
		i = j + 1
		host = s[1:j]
	} else {
		i = strings.IndexAny(s, ":/")
		if i < 0 {
			return s, nil, true
		}
		host = s[:i]
	}
	if i == len(s) {
		return host, nil, true
	}
	if s[i] != ':' && s[i] != '/' {
		return "", nil, false
	}
	p := s[i+1:]
	return host, &p, true
}

// hpdelim2 splits host from what follows at ':' or '/' (a [bracketed]
// host may contain ':'). rest is nil at the end of the string.
func hpdelim2(s string) (host string, rest *string, delim byte, ok bool) {
	i := 0
	if strings.HasPrefix(s, "[") {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", nil, 0, false
		}
		i = j + 1
	} else if j := strings.IndexAny(s, ":/"); j >= 0 {
		i = j
	} else {
		i = len(s)
	}
	if i == len(s) {
		return s, nil, 0, true
	}
	if s[i] != ':' && s[i] != '/' {
		return "", nil, 0, false
	}
	r := s[i+1:]
	return s[:i], &r, s[i], true
}

func cleanHostname(h string) string {
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// validDomain is valid_domain(name, 0): letters, digits, '-', '_' and
// single dots, starting with a letter or digit, not ending in a dot.
func validDomain(name string) bool {
	if name == "" {
		return false
	}
	c0 := name[0]
	if !isAlnum(c0) {
		return false
	}
	var last byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if last == '.' && c == '.' {
			return false
		}
		if c != '.' && c != '-' && c != '_' && !isAlnum(c) {
			return false
		}
		last = c
	}
	return name[len(name)-1] != '.'
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isAddrFast(name string) bool {
	return strings.ContainsAny(name, "%:") || strings.Trim(name, "0123456789.") == ""
}

func isAddr(name string, af int) bool {
	if isAddrFast(name) {
		return true
	}
	_, ok := numericAddr(name, -1)
	return ok
}

// numericAddr parses name as getaddrinfo(AI_NUMERICHOST) does (IPv4 in
// any inet_aton form, IPv6 with an interface scope) and formats it as
// getnameinfo(NI_NUMERICHOST).
func numericAddr(name string, af int) (string, bool) {
	if v4, ok := inetAton(name); ok {
		if af == afInet6 {
			return "", false
		}
		return v4, true
	}
	if !strings.Contains(name, ":") {
		return "", false
	}
	a, err := netip.ParseAddr(name)
	if err != nil || !a.Is6() || af == afInet {
		return "", false
	}
	if z := a.Zone(); z != "" {
		if _, err := net.InterfaceByName(z); err != nil {
			if n, e := strconv.Atoi(z); e != nil || n < 0 {
				return "", false
			}
		}
	}
	return a.String(), true
}

// inetAton parses the forms inet_aton(3) accepts: a, a.b, a.b.c, a.b.c.d
// with each part decimal, octal (leading 0) or hex (0x).
func inetAton(s string) (string, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 || s == "" {
		return "", false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" {
			return "", false
		}
		base := 10
		digits := p
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" {
			if base == 16 {
				digits = "0" // "0x" is 0 for strtoul
			} else {
				return "", false
			}
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return "", false
		}
		vals[i] = v
	}
	var ip uint64
	n := len(vals)
	for i := 0; i < n-1; i++ {
		if vals[i] > 0xff {
			return "", false
		}
		ip |= vals[i] << (24 - 8*uint(i))
	}
	if vals[n-1] > (uint64(1)<<(8*uint(5-n)))-1 {
		return "", false
	}
	ip |= vals[n-1]
	return fmt.Sprintf("%d.%d.%d.%d", ip>>24&0xff, ip>>16&0xff, ip>>8&0xff, ip&0xff), true
}
