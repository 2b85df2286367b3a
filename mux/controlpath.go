package mux

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Tokens are the values of ControlPath's % tokens, OpenSSH's
// DEFAULT_CLIENT_PERCENT_EXPAND_ARGS.
type Tokens struct {
	LocalHost string // %l: this host's name; %L is its first component
	Host      string // %h: the remote host name, after HostName
	Port      string // %p
	User      string // %r: the remote user
	Jump      string // %j: the first ProxyJump host, "" without one
	Alias     string // %n: the host as given on the command line
	KeyAlias  string // %k: HostKeyAlias, else the host as given
	UID       string // %i: the local uid
	Home      string // %d: the local home directory
	LocalUser string // %u: the local user name
}

// ConnHash is %C: the SHA-1 of %l%h%p%r%j in hex, as OpenSSH 9.6 and
// later compute it. OpenSSH before 9.6 leaves %j out, which gives the
// same hash whenever there is no ProxyJump.
func ConnHash(t Tokens) string {
	h := sha1.Sum([]byte(t.LocalHost + t.Host + t.Port + t.User + t.Jump))
	return hex.EncodeToString(h[:])
}

// ExpandControlPath expands a ControlPath as ssh does: a leading ~ to
// t.Home, then % tokens and ${VAR} from the environment. "none" stays
// "none" (no control socket). An unknown token or an unset variable is
// an error, as in OpenSSH.
func ExpandControlPath(path string, t Tokens) (string, error) {
	if path == "none" || path == "" {
		return path, nil
	}
	if path == "~" || strings.HasPrefix(path, "~/") {
		path = strings.TrimSuffix(t.Home, "/") + path[1:]
	} else if strings.HasPrefix(path, "~") {
		return "", fmt.Errorf("ControlPath %q: only ~ and ~/ are expanded", path)
	}
	short := t.LocalHost
	if i := strings.IndexByte(short, '.'); i >= 0 {
		short = short[:i]
	}
	toks := map[byte]string{
		'C': ConnHash(t), 'L': short, 'i': t.UID, 'k': t.KeyAlias, 'l': t.LocalHost,
		'n': t.Alias, 'p': t.Port, 'd': t.Home, 'h': t.Host, 'r': t.User, 'u': t.LocalUser, 'j': t.Jump,
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '$' && i+1 < len(path) && path[i+1] == '{' {
			end := strings.IndexByte(path[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("ControlPath %q: environment variable missing closing '}'", path)
			}
			name := path[i+2 : i+2+end]
			v, ok := os.LookupEnv(name)
			if name == "" || !ok {
				return "", fmt.Errorf("ControlPath %q: environment variable ${%s} has no value", path, name)
			}
			b.WriteString(v)
			i += 2 + end
			continue
		}
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(path) {
			return "", fmt.Errorf("ControlPath %q: invalid format: ends in %%", path)
		}
		if path[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := toks[path[i]]
		if !ok {
			return "", fmt.Errorf("ControlPath %q: unknown %%-token %%%c", path, path[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
