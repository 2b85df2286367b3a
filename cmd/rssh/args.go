package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/rssh/rssh/config"
)

// mode is what one invocation does.
type mode int

const (
	modeSession    mode = iota // connect and run a command or shell
	modeDumpConfig             // -G
	modeVersion                // -V
	modeHelp                   // --help
	modeQuery                  // -Q
)

// invocation is argv parsed: which mode, the config request it implies, and
// the remote command.
type invocation struct {
	mode        mode
	host        string   // destination host, user@ and ssh:// removed
	options     []string // config lines, in the order OpenSSH would apply them
	configFile  string   // -F
	command     []string
	verbose     int    // number of -v
	logFile     string // -E
	stdioTarget string // -W host:port
	ttyFlags    int    // number of -t
	noTTY       bool   // -T
	env         string // --env: an environment name, "none", or "" when not given
	requireEnv  bool   // --require-env
	query       string // -Q
	dumpOwn     bool   // --rssh: -G also prints rssh's own settings
	muxCommand  string // -O: check, forward, cancel, exit, stop, proxy
	// warnings are printed before anything else runs, as ssh prints them
	// while reading its arguments (a -i file that is not there).
	warnings []string
}

// usageError is a command-line mistake: rssh prints it with the usage line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

var usage = synopsis()

// Option letters as OpenSSH 9.2's getopt string has them; those that take an
// argument are followed by ':'.
const optstring = "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:PQ:R:S:TVw:W:XYy"

func takesArg(c byte) (known, arg bool) {
	i := strings.IndexByte(optstring, c)
	if i < 0 || c == ':' {
		return false, false
	}
	return true, i+1 < len(optstring) && optstring[i+1] == ':'
}

// parseArgs parses ssh's command line. Like OpenSSH (whose getopt does not
// permute), options come before the destination and again right after it;
// the first word after that starts the remote command.
func parseArgs(args []string) (*invocation, error) {
	inv := &invocation{}
	// direct holds options OpenSSH assigns straight into its options struct
	// (last one wins, ahead of -o and the config files); ordered holds those
	// that go through first-value-wins processing in argv order.
	direct := map[string]string{}
	var directOrder []string
	setDirect := func(key, value string) {
		if _, ok := direct[key]; !ok {
			directOrder = append(directOrder, key)
		}
		direct[key] = value
	}
	var ordered []string
	// userLines are the "User" lines -l and user@host made, with the user.
	userLines := map[string]string{}
	jumpSeen := false

	i := 0
	parseOptions := func() error {
		for i < len(args) {
			a := args[i]
			if a == "--" {
				i++
				return errEndOfOptions
			}
			if strings.HasPrefix(a, "--") {
				i++
				name, value, hasValue := strings.Cut(a[2:], "=")
				if longTakesValue[name] && !hasValue {
					if i >= len(args) {
						return &usageError{fmt.Sprintf("option --%s requires an argument", name)}
					}
					value, hasValue = args[i], true
					i++
				}
				if err := inv.longOption(name, value, hasValue); err != nil {
					return err
				}
				continue
			}
			if len(a) < 2 || a[0] != '-' {
				return nil
			}
			i++
			for j := 1; j < len(a); j++ {
				c := a[j]
				known, hasArg := takesArg(c)
				if !known {
					return &usageError{fmt.Sprintf("unknown option -- %c", c)}
				}
				var val string
				if hasArg {
					if j+1 < len(a) {
						val = a[j+1:]
					} else if i < len(args) {
						val = args[i]
						i++
					} else {
						return &usageError{fmt.Sprintf("option requires an argument -- %c", c)}
					}
					j = len(a)
				}
				switch c {
				case '1':
					return errors.New("SSH protocol v.1 is no longer supported")
				case '2', 'x', 'y', 'k':
					// Protocol 2 is the only one; X11, syslog and GSSAPI
					// delegation are off in rssh anyway.
				case '4':
					setDirect("AddressFamily", "inet")
				case '6':
					setDirect("AddressFamily", "inet6")
				case 'A':
					setDirect("ForwardAgent", "yes")
				case 'a':
					setDirect("ForwardAgent", "no")
				case 'B':
					setDirect("BindInterface", val)
				case 'b':
					setDirect("BindAddress", val)
				case 'C':
					setDirect("Compression", "yes")
				case 'c':
					// As ssh, each -c is checked as it is read, so a bad
					// one is refused even when a later -c replaces it.
					if strings.HasPrefix(val, "-") || config.CheckLine("Ciphers "+quote(val)) != nil {
						return fmt.Errorf("unknown cipher type '%s'", val)
					}
					setDirect("Ciphers", val)
				case 'D':
					// As ssh, a spec that cannot work is refused before
					// anything connects.
					if _, err := config.ParseForward(val, config.DynamicForward); err != nil {
						return err
					}
					ordered = append(ordered, "DynamicForward "+val)
				case 'E':
					inv.logFile = val
				case 'e':
					if config.CheckLine("EscapeChar "+quote(val)) != nil {
						return fmt.Errorf("bad escape character '%s'", val)
					}
					setDirect("EscapeChar", val)
				case 'F':
					inv.configFile = val
				case 'G':
					inv.mode = modeDumpConfig
				case 'g':
					setDirect("GatewayPorts", "yes")
				case 'i':
					// As ssh: a -i file that cannot be stat'ed is a warning
					// and is not used; the other identities, the defaults and
					// the agent are still tried.
					if err := statIdentity(val); err != nil {
						inv.warnings = append(inv.warnings, fmt.Sprintf("Warning: Identity file %s not accessible: %s.", expandTilde(val), err))
						break
					}
					ordered = append(ordered, "IdentityFile "+quote(val))
				case 'J':
					if jumpSeen {
						return &usageError{"only a single -J option is permitted"}
					}
					jumpSeen = true
					ordered = append(ordered, "ProxyJump "+val)
				case 'L':
					if _, err := config.ParseForward(val, config.LocalForward); err != nil {
						return err
					}
					ordered = append(ordered, "LocalForward "+forwardSpec(val))
				case 'l':
					ordered = append(ordered, "User "+quote(val))
					userLines["User "+quote(val)] = val
				case 'm':
					if strings.ContainsAny(val[:min(1, len(val))], "+-^") || config.CheckLine("MACs "+quote(val)) != nil {
						return fmt.Errorf("unknown mac type '%s'", val)
					}
					setDirect("MACs", val)
				case 'N':
					setDirect("SessionType", "none")
					// ssh's -N also sets request_tty to no, the variable
					// -t and -T set, so the last of them wins.
					inv.noTTY = true
					inv.ttyFlags = 0
				case 'n':
					setDirect("StdinNull", "yes")
				case 'o':
					ordered = append(ordered, val)
				case 'p':
					if _, err := strconv.ParseUint(val, 10, 16); err != nil || val == "0" {
						return fmt.Errorf("bad port '%s'", val)
					}
					ordered = append(ordered, "Port "+val)
				case 'q':
					setDirect("LogLevel", "QUIET")
				case 'R':
					if _, err := config.ParseForward(val, config.RemoteForward); err != nil {
						return err
					}
					ordered = append(ordered, "RemoteForward "+forwardSpec(val))
				case 's':
					setDirect("SessionType", "subsystem")
				case 'T':
					inv.noTTY = true
					inv.ttyFlags = 0
				case 't':
					inv.noTTY = false
					inv.ttyFlags++
				case 'V':
					// As ssh: the version is printed at once, the rest of
					// argv unread, but options before it that ssh checks
					// as it reads them (-o, -c, -m, -e) must be valid.
					for _, k := range directOrder {
						if err := config.CheckLine(k + " " + quote(direct[k])); err != nil {
							return err
						}
					}
					for _, l := range ordered {
						if err := config.CheckLine(l); err != nil {
							return err
						}
					}
					inv.mode = modeVersion
					return errEndOfOptions
				case 'v':
					inv.verbose++
					setDirect("LogLevel", []string{"DEBUG1", "DEBUG2", "DEBUG3"}[min(inv.verbose, 3)-1])
				case 'W':
					if inv.stdioTarget != "" {
						return errors.New("stdio forward already specified")
					}
					if inv.muxCommand != "" {
						// As ssh: only when -O comes first.
						return errors.New("cannot specify stdio forward with -O")
					}
					inv.stdioTarget = val
					setDirect("RequestTTY", "no")
					setDirect("SessionType", "none")
				case 'S':
					setDirect("ControlPath", val)
				case 'M':
					// As ssh: -M is ControlMaster yes, a second -M ask.
					if direct["ControlMaster"] == "yes" {
						setDirect("ControlMaster", "ask")
					} else {
						setDirect("ControlMaster", "yes")
					}
				case 'O':
					switch val {
					case "check", "forward", "cancel", "exit", "stop", "proxy":
						inv.muxCommand = val
					default:
						return errors.New("invalid multiplex command")
					}
				case 'f':
					setDirect("ForkAfterAuthentication", "yes")
					setDirect("StdinNull", "yes")
				case 'I':
					return unsupported("-I (PKCS#11)")
				case 'K':
					return unsupported("-K (GSSAPI)")
				case 'P':
					return unsupported("-P (tags)")
				case 'Q':
					// As ssh: answered at once, the rest of argv unread.
					inv.mode, inv.query = modeQuery, val
					return errEndOfOptions
				case 'w':
					return unsupported("-w (tunnel forwarding)")
				case 'X', 'Y':
					return unsupported(fmt.Sprintf("-%c (X11 forwarding)", c))
				}
			}
		}
		return nil
	}

	err := parseOptions()
	if err != nil && err != errEndOfOptions {
		return nil, err
	}
	optionsEnded := err == errEndOfOptions
	if inv.mode == modeVersion || inv.mode == modeHelp || inv.mode == modeQuery {
		return inv, nil
	}
	if i >= len(args) {
		return nil, &usageError{"no destination given"}
	}
	dest := args[i]
	i++
	user, host, port, err := parseDestination(dest)
	if err != nil {
		return nil, err
	}
	inv.host = host
	var destLines []string
	if user != "" {
		destLines = append(destLines, "User "+quote(user))
		userLines["User "+quote(user)] = user
	}
	if port != "" {
		destLines = append(destLines, "Port "+port)
	}
	orderedBefore := len(ordered)
	if !optionsEnded {
		// Options may follow the destination, as OpenSSH's getopt is re-run there.
		if err := parseOptions(); err != nil && err != errEndOfOptions {
			return nil, err
		}
	}
	// The destination's user and port apply where the destination stood.
	ordered = append(ordered[:orderedBefore], append(destLines, ordered[orderedBefore:]...)...)
	// As ssh (CVE-2023-51385): the user given on the command line, the
	// first of -l and user@host, goes into %r and must hold no shell
	// metacharacters; users from config files are not checked.
	for _, l := range ordered {
		if u, ok := userLines[l]; ok {
			if !validRemoteUser(u) {
				return nil, errors.New("remote username contains invalid characters")
			}
			break
		}
	}
	inv.command = args[i:]
	if direct["SessionType"] == "subsystem" && len(inv.command) == 0 {
		return nil, errors.New("you must specify a subsystem to invoke")
	}

	// -t/-T are direct assignments in OpenSSH.
	switch {
	case inv.noTTY:
		setDirect("RequestTTY", "no")
	case inv.ttyFlags == 1:
		setDirect("RequestTTY", "yes")
	case inv.ttyFlags > 1:
		setDirect("RequestTTY", "force")
	}
	for _, k := range directOrder {
		inv.options = append(inv.options, k+" "+quote(direct[k]))
	}
	inv.options = append(inv.options, ordered...)
	if inv.dumpOwn && inv.mode != modeDumpConfig {
		return nil, &usageError{"--rssh goes with -G"}
	}
	return inv, nil
}

var errEndOfOptions = errors.New("end of options")

// longTakesValue lists rssh's own long options that take a value.
var longTakesValue = map[string]bool{"env": true}

func (inv *invocation) longOption(name, value string, hasValue bool) error {
	switch {
	case name == "help" && !hasValue:
		inv.mode = modeHelp
	case name == "version" && !hasValue:
		inv.mode = modeVersion
	case name == "env":
		if value == "" {
			return &usageError{"--env needs an environment name, or none"}
		}
		inv.env = value
	case name == "require-env" && !hasValue:
		inv.requireEnv = true
	case name == "forward-secrets" && !hasValue:
		// The same as -o: the command line wins over the config file.
		inv.options = append(inv.options, "RsshForwardSecrets yes")
	case name == "rssh" && !hasValue:
		inv.dumpOwn = true
	default:
		return &usageError{fmt.Sprintf("unknown option --%s", name)}
	}
	return nil
}

func unsupported(what string) error {
	return fmt.Errorf("%s is not supported by rssh", what)
}

// parseDestination splits [user@]host and ssh://[user@]host[:port].
func parseDestination(dest string) (user, host, port string, err error) {
	if strings.HasPrefix(dest, "ssh://") {
		u, perr := url.Parse(dest)
		if perr != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", "", "", fmt.Errorf("invalid destination %q: want ssh://[user@]host[:port]", dest)
		}
		if u.User != nil {
			user = u.User.Username()
		}
		host, port = u.Hostname(), u.Port()
		if port != "" {
			if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n == 0 {
				return "", "", "", fmt.Errorf("invalid destination %q: bad port %q", dest, port)
			}
		}
	} else {
		host = dest
		if at := strings.LastIndexByte(dest, '@'); at >= 0 {
			user, host = dest[:at], dest[at+1:]
		}
	}
	if host == "" {
		return "", "", "", fmt.Errorf("invalid destination %q: no host name", dest)
	}
	if strings.ContainsAny(host, " \t\r\n'\"\\`$;&|<>(){}") || strings.HasPrefix(host, "-") {
		return "", "", "", fmt.Errorf("invalid destination %q: not a host name", dest)
	}
	return user, host, port, nil
}

// forwardSpec turns a command-line -L/-R argument
// ([bind:]port:host:hostport) into the config form, whose listen and target
// parts are two words ([bind:]port host:hostport). Brackets keep IPv6
// addresses whole. Forms that do not split (a -R dynamic port) pass through.
func forwardSpec(v string) string {
	var fields []string
	depth, start := 0, 0
	for k := 0; k < len(v); k++ {
		switch v[k] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				fields = append(fields, v[start:k])
				start = k + 1
			}
		}
	}
	fields = append(fields, v[start:])
	// Two fields with a socket path ("/a:/b", "port:/b") are a listen
	// side and a target, as parse_forward reads them; any other two
	// ("bind:port" of -R's SOCKS) are one listen side.
	if len(fields) == 2 && strings.ContainsRune(v, '/') {
		return quote(fields[0]) + " " + quote(fields[1])
	}
	if len(fields) < 3 {
		return quote(v)
	}
	n := len(fields)
	return quote(strings.Join(fields[:n-2], ":")) + " " + quote(fields[n-2]+":"+fields[n-1])
}

// quote makes v one config word, escaping quotes as OpenSSH's argv_split reads them.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"'#=\\") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// statIdentity is ssh's stat(2) of a -i path after tilde expansion: nil, or
// the reason as strerror words it ("No such file or directory").
func statIdentity(path string) error {
	_, err := os.Stat(expandTilde(path))
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strerror(errno)
	}
	return err
}

// strerror is errno's C wording: Go's text with the first letter capitalised.
func strerror(e syscall.Errno) error {
	s := e.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return errors.New(s)
}

// expandTilde is OpenSSH's tilde_expand_filename for ~ and ~/: the local
// user's home directory (from the password database, as ssh uses); ~user
// forms are left for the config's own expansion.
func expandTilde(path string) string {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path
	}
	home := ""
	if u, err := user.Current(); err == nil {
		home = u.HomeDir
	}
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, path[1:])
}

// validRemoteUser is ssh_valid_ruser: no leading '-', no control
// characters, none of '`";&<>|(){}, no '-' after a blank, no trailing '\'.
func validRemoteUser(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return false
		case strings.IndexByte("'`\";&<>|(){}", c) >= 0:
			return false
		case strings.IndexByte(" \t\n\v\f\r", c) >= 0 && i+1 < len(s) && s[i+1] == '-':
			return false
		case c == '\\' && i+1 == len(s):
			return false
		}
	}
	return true
}
