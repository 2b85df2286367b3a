package config

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// cursor walks a Match line with strdelim, which (unlike argv_split) knows
// only double quotes and splits on '='. nil marks OpenSSH's NULL pointer.
type cursor struct {
	s   string
	nil bool
}

func (c *cursor) next() (tok string, isNull bool) {
	if c.nil {
		return "", true
	}
	t, rest, done, ok := strdelim(c.s)
	if !ok {
		c.nil = true
		return "", true
	}
	if done {
		c.nil = true
		c.s = ""
	} else {
		c.s = rest
	}
	return t, false
}

// matchLine evaluates the criteria of a Match line as match_cfg_line. It
// returns whether the block applies and any text it left unconsumed.
func (r *resolver) matchLine(str string, pos Pos) (bool, string, error) {
	o := r.o
	port := o.port
	if port <= 0 {
		port = 22
	}
	ruser := r.localUser
	if o.user != nil {
		ruser = o.user.v
	}
	host := r.host
	switch {
	case r.finalPass && o.hostname != nil:
		host = o.hostname.v
	case o.hostname != nil:
		h, err := percentExpand(o.hostname.v, tokens{'h': r.host}, false)
		if err != nil {
			return false, "", errorf(o.hostname.pos, "hostname: %v", err)
		}
		host = h
	}
	c := &cursor{s: str}
	result := true
	attributes := 0
	for {
		attrib, null := c.next()
		if null || attrib == "" {
			break
		}
		if attrib[0] == '#' {
			c.nil = true
			break
		}
		oattrib := attrib
		negate := attrib[0] == '!'
		if negate {
			attrib = attrib[1:]
		}
		if strings.EqualFold(attrib, "all") {
			arg, null := c.next()
			if attributes > 1 || (!null && arg != "" && arg[0] != '#') {
				return false, "", errorf(pos, "'%s' cannot be combined with other Match attributes", oattrib)
			}
			if !null && arg != "" && arg[0] == '#' {
				c.nil = true
			}
			if result {
				result = !negate
			}
			return result, c.rest(), nil
		}
		attributes++
		if strings.EqualFold(attrib, "canonical") || strings.EqualFold(attrib, "final") {
			if strings.EqualFold(attrib, "final") {
				r.wantFinal = true
			}
			if r.finalPass == negate {
				result = false
			}
			continue
		}
		arg, null := c.next()
		if null || arg == "" || arg[0] == '#' {
			return false, "", errorf(pos, "missing Match criteria for %s", attrib)
		}
		var ok bool
		switch strings.ToLower(attrib) {
		case "host":
			ok = matchHostname(host, arg) == 1
		case "originalhost":
			ok = matchHostname(r.origHost, arg) == 1
		case "user":
			ok = matchPatternList(ruser, arg, false) == 1
		case "localuser":
			ok = matchPatternList(r.localUser, arg, false) == 1
		case "exec":
			portStr := strconv.Itoa(port)
			keyAlias := host
			if o.hostKeyAlias != nil {
				keyAlias = o.hostKeyAlias.v
			}
			cmd, err := percentExpand(arg, tokens{
				'C': connHash(r.thisHost, host, portStr, ruser),
				'L': shortHost(r.thisHost),
				'd': r.home,
				'h': host,
				'k': keyAlias,
				'l': r.thisHost,
				'n': r.origHost,
				'p': portStr,
				'r': ruser,
				'u': r.localUser,
				'i': r.uid,
			}, false)
			if err != nil {
				return false, "", fatalf(pos, "match exec: %v", err)
			}
			if !result {
				// A criterion before this one failed: OpenSSH skips the
				// command.
				continue
			}
			status, err := runMatchExec(cmd)
			if err != nil {
				return false, "", errorf(pos, "match exec %q: %v", cmd, err)
			}
			ok = status == 0
		default:
			return false, "", errorf(pos, "unsupported match attribute %s", attrib)
		}
		if ok == negate {
			result = false
		}
	}
	if attributes == 0 {
		return false, "", errorf(pos, "one or more attributes required for match")
	}
	return result, c.rest(), nil
}

func (c *cursor) rest() string {
	if c.nil {
		return ""
	}
	return c.s
}

// connHash is %C: the hex SHA-1 of local host, host, port and user, as
// ssh_connection_hash in OpenSSH 9.2.
func connHash(thisHost, host, port, user string) string {
	h := sha1.Sum([]byte(thisHost + host + port + user))
	return hex.EncodeToString(h[:])
}

func shortHost(h string) string {
	if i := strings.IndexByte(h, '.'); i >= 0 {
		return h[:i]
	}
	return h
}

// runMatchExec runs a Match exec command as execute_in_shell: with the
// user's $SHELL (default /bin/sh) -c, stdin and stdout on /dev/null and
// stderr inherited, so nothing it prints reaches rssh's stdout. It returns
// the exit status; a command killed by a signal is an error. Tests replace
// it (the fuzz target must not run commands).
var runMatchExec = func(cmd string) (int, error) {
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	if st, err := os.Stat(shell); err != nil || st.Mode()&0o111 == 0 {
		return 0, errors.New("shell " + strconv.Quote(shell) + " is not executable")
	}
	c := exec.Command(shell, "-c", cmd)
	c.Stdin = nil
	c.Stdout = nil
	c.Stderr = os.Stderr
	err := c.Run()
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() < 0 {
			return 0, errors.New("exited abnormally")
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}
