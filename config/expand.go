package config

import (
	"fmt"
	"os"
	"strings"
)

// tokens maps a %-token letter to its value. Which letters a keyword takes
// is part of OpenSSH's behaviour: an unknown letter is an error.
type tokens map[byte]string

// percentExpand expands %x tokens (and, with dollar, ${VAR} from the
// environment) as OpenSSH's vdollar_percent_expand. getenv is os.LookupEnv
// unless a test replaces it.
func percentExpand(s string, toks tokens, dollar bool) (string, error) {
	var b strings.Builder
	var missing []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if dollar && c == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("environment variable %q missing closing '}'", s[i+2:])
			}
			name := s[i+2 : i+2+end]
			if name == "" {
				return "", fmt.Errorf("zero-length environment variable")
			}
			if v, ok := lookupEnv(name); ok {
				b.WriteString(v)
			} else {
				missing = append(missing, name)
			}
			i += 2 + end
			continue
		}
		if c != '%' || toks == nil {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", fmt.Errorf("invalid format: %q ends in %%", s)
		}
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := toks[s[i]]
		if !ok {
			return "", fmt.Errorf("unknown %%-token %%%c in %q", s[i], s)
		}
		b.WriteString(v)
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable ${%s} has no value", missing[0])
	}
	return b.String(), nil
}

// dollarExpand expands only ${VAR}, as OpenSSH's dollar_expand.
func dollarExpand(s string) (string, error) { return percentExpand(s, nil, true) }

var lookupEnv = os.LookupEnv

// tildeExpand expands a leading ~ or ~/ to home, as tilde_expand_filename
// does with the passwd entry of the current user. ~user is looked up in the
// passwd database.
func tildeExpand(path, home string) (string, error) {
	if !strings.HasPrefix(path, "~") {
		return path, nil
	}
	rest := path[1:]
	dir := home
	var sub string
	switch {
	case rest == "":
	case rest[0] == '/':
		sub = strings.TrimLeft(rest, "/")
	default:
		user := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			user = rest[:i]
			sub = strings.TrimLeft(rest[i+1:], "/")
		}
		h, err := userHome(user)
		if err != nil {
			return "", fmt.Errorf("no such user %s", user)
		}
		dir = h
	}
	if dir == "" || dir[len(dir)-1] != '/' {
		dir += "/"
	}
	return dir + sub, nil
}
