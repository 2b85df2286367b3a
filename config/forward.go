package config

import (
	"fmt"
	"strings"
)

// portStreamLocal marks a Unix-socket end of a forward (PORT_STREAMLOCAL).
const portStreamLocal = -2

// forward is OpenSSH's struct Forward; "" with has*=false is NULL.
type forward struct {
	listenHost, listenPath   string
	hasListenHost, hasLPath  bool
	listenPort               int
	connectHost, connectPath string
	hasConnHost, hasCPath    bool
	connectPort              int
}

func (a forward) equal(b forward) bool { return a == b }

type fwdArg struct {
	arg    string
	isPath bool
}

// parseFwdField takes the next ':'-separated field off p, honouring
// [brackets] and backslash escapes (parse_fwd_field). ok is false at the end
// of the string or on a malformed field.
func parseFwdField(p string) (f fwdArg, rest string, more, ok bool) {
	if p == "" {
		return f, "", false, false
	}
	if p[0] == '[' {
		isPath := false
		i := 1
		for i < len(p) && p[i] != ']' {
			if p[i] == '/' {
				isPath = true
			}
			i++
		}
		if i >= len(p) || (i+1 < len(p) && p[i+1] != ':') {
			return f, "", false, false
		}
		f = fwdArg{p[1:i], isPath}
		if i+1 < len(p) {
			return f, p[i+2:], true, true
		}
		return f, "", true, true
	}
	var b strings.Builder
	isPath := false
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 >= len(p) {
				return f, "", false, false
			}
			// The escaped byte is taken literally, never as a delimiter
			// or a path marker.
			i++
			b.WriteByte(p[i])
			continue
		case '/':
			isPath = true
		case ':':
			return fwdArg{b.String(), isPath}, p[i+1:], true, true
		}
		b.WriteByte(p[i])
	}
	return fwdArg{b.String(), isPath}, "", true, true
}

// parseForward is parse_forward: "[listenhost:]listenport|listenpath:
// connecthost:connectport|connectpath" (or "[listenhost:]listenport" for a
// dynamic forward), with ${VAR} expanded first.
func parseForward(spec string, dynamic, remote bool) (forward, bool) {
	var fwd forward
	p, err := dollarExpand(spec)
	if err != nil {
		return fwd, false
	}
	p = strings.TrimLeft(p, " \t\n\v\f\r")
	var args []fwdArg
	rest := p
	for len(args) < 4 {
		f, r, _, ok := parseFwdField(rest)
		if !ok {
			break
		}
		args = append(args, f)
		rest = r
	}
	if rest != "" {
		return forward{}, false
	}
	a2 := func(s string) int { return a2port(s) }
	i := len(args)
	switch i {
	case 1:
		if args[0].isPath {
			fwd.listenPath, fwd.hasLPath = args[0].arg, true
			fwd.listenPort = portStreamLocal
		} else {
			fwd.listenPort = a2(args[0].arg)
		}
		fwd.connectHost, fwd.hasConnHost = "socks", true
	case 2:
		switch {
		case args[0].isPath && args[1].isPath:
			fwd.listenPath, fwd.hasLPath = args[0].arg, true
			fwd.listenPort = portStreamLocal
			fwd.connectPath, fwd.hasCPath = args[1].arg, true
			fwd.connectPort = portStreamLocal
		case args[1].isPath:
			fwd.listenPort = a2(args[0].arg)
			fwd.connectPath, fwd.hasCPath = args[1].arg, true
			fwd.connectPort = portStreamLocal
		default:
			fwd.listenHost, fwd.hasListenHost = args[0].arg, true
			fwd.listenPort = a2(args[1].arg)
			fwd.connectHost, fwd.hasConnHost = "socks", true
		}
	case 3:
		switch {
		case args[0].isPath:
			fwd.listenPath, fwd.hasLPath = args[0].arg, true
			fwd.listenPort = portStreamLocal
			fwd.connectHost, fwd.hasConnHost = args[1].arg, true
			fwd.connectPort = a2(args[2].arg)
		case args[2].isPath:
			fwd.listenHost, fwd.hasListenHost = args[0].arg, true
			fwd.listenPort = a2(args[1].arg)
			fwd.connectPath, fwd.hasCPath = args[2].arg, true
			fwd.connectPort = portStreamLocal
		default:
			fwd.listenPort = a2(args[0].arg)
			fwd.connectHost, fwd.hasConnHost = args[1].arg, true
			fwd.connectPort = a2(args[2].arg)
		}
	case 4:
		fwd.listenHost, fwd.hasListenHost = args[0].arg, true
		fwd.listenPort = a2(args[1].arg)
		fwd.connectHost, fwd.hasConnHost = args[2].arg, true
		fwd.connectPort = a2(args[3].arg)
	default:
		return forward{}, false
	}
	if dynamic {
		if i != 1 && i != 2 {
			return forward{}, false
		}
	} else {
		if i != 3 && i != 4 && !fwd.hasCPath && !fwd.hasLPath {
			return forward{}, false
		}
		if fwd.connectPort <= 0 && !fwd.hasCPath {
			return forward{}, false
		}
	}
	if (fwd.listenPort < 0 && !fwd.hasLPath) || (!remote && fwd.listenPort == 0) {
		return forward{}, false
	}
	const niMaxHost, pathMaxSun = 1025, 108
	if (fwd.hasConnHost && len(fwd.connectHost) >= niMaxHost) ||
		(fwd.hasCPath && len(fwd.connectPath) >= pathMaxSun) ||
		(fwd.hasListenHost && len(fwd.listenHost) >= niMaxHost) ||
		(fwd.hasLPath && len(fwd.listenPath) >= pathMaxSun) {
		return forward{}, false
	}
	return fwd, true
}

// dumpForwards prints forwards as dump_cfg_forwards does, including its
// quirk: a local forward without a connect host (a Unix-socket target) is
// also listed as a dynamicforward.
func dumpForwards(keyword string, fwds []forward) []string {
	var out []string
	for _, f := range fwds {
		if keyword == "dynamicforward" && f.hasConnHost && f.connectHost != "socks" {
			continue
		}
		if keyword == "localforward" && f.hasConnHost && f.connectHost == "socks" {
			continue
		}
		s := keyword
		switch {
		case f.listenPort == portStreamLocal:
			s += " " + f.listenPath
		case !f.hasListenHost:
			s += fmt.Sprintf(" %d", f.listenPort)
		default:
			s += fmt.Sprintf(" [%s]:%d", f.listenHost, f.listenPort)
		}
		if keyword != "dynamicforward" {
			switch {
			case f.connectPort == portStreamLocal:
				s += " " + f.connectPath
			case !f.hasConnHost:
				s += fmt.Sprintf(" %d", f.connectPort)
			default:
				s += fmt.Sprintf(" [%s]:%d", f.connectHost, f.connectPort)
			}
		}
		out = append(out, s)
	}
	return out
}
