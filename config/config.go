// Package config resolves OpenSSH client configuration the way OpenSSH's
// readconf.c does: command-line options first, then the user's file, then the
// system file, first value wins, with Host and Match blocks, Include, and the
// per-keyword %-token and ~ expansion. `rssh -G` prints the result as
// `ssh -G` does, every key in its order, and a golden test holds the two
// equal, whole.
//
// Two details surprise people and are kept on purpose because ssh does
// them: Host patterns match the host as typed case-sensitively (Match host
// and originalhost do not), and on the final pass (Match final, Match
// canonical, CanonicalizeHostname) Host patterns see the expanded,
// lowercased HostName. See README.md for where rssh differs from ssh -G.
//
// It owns reading and resolving configuration; it does not dial, authenticate
// or fetch tokens.
package config

import (
	"fmt"
	"strings"
	"time"
)

// Pos is where a value came from. File is "" for defaults and "command-line"
// for -o options, as OpenSSH names them.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.File == "" {
		return "(default)"
	}
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Error is a configuration error that names the file and line at fault.
type Error struct {
	Pos Pos
	Msg string

	// fatal errors stop reading at once (OpenSSH's fatal(), and rssh's
	// own bounds); the others are counted, as ssh counts bad lines.
	fatal bool
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// BadOptions is what reading a file with bad lines returns, as ssh
// reports it: every bad line, then "FILE: terminating, N bad configuration
// options", N counting File's own (an included file's bad lines end the
// reading at its end, after those of the including file read so far). With
// N zero, reading ended at a fatal error, the last of Errs, and there is no
// terminating line. errors.As finds the first *Error in it.
type BadOptions struct {
	Errs []*Error
	File string
	N    int
}

// Terminating is ssh's last line: "FILE: terminating, N bad configuration
// options", or "" after a fatal error.
func (b *BadOptions) Terminating() string {
	if b.N == 0 {
		return ""
	}
	return fmt.Sprintf("%s: terminating, %d bad configuration options", b.File, b.N)
}

// Error is every line in one: "f:1: …; f:3: …; f: terminating, 2 bad
// configuration options". The rssh command prints them one per line.
func (b *BadOptions) Error() string {
	var parts []string
	for _, e := range b.Errs {
		parts = append(parts, e.Error())
	}
	if t := b.Terminating(); t != "" {
		parts = append(parts, t)
	}
	return strings.Join(parts, "; ")
}

func (b *BadOptions) Unwrap() []error {
	out := make([]error, len(b.Errs))
	for i, e := range b.Errs {
		out[i] = e
	}
	return out
}

// Request is what the command line says about one destination.
type Request struct {
	// Host is the destination as typed, with any user@ and ssh:// already
	// split off by the caller (they arrive as Options lines).
	Host string
	// Options are command-line settings as "Keyword value" lines in argv
	// order: -o arguments verbatim, and the other flags translated
	// (-l → "User x", -p → "Port n", -i → "IdentityFile f", -J → "ProxyJump j",
	// user@host → "User user", …). First value wins, as in OpenSSH.
	Options []string
	// ConfigFile is -F: "" reads the user file and the system file; "none"
	// reads no file; anything else reads only that file.
	ConfigFile string
	// HasCommand says a remote command follows the destination on the
	// command line (ssh then turns UpdateHostKeys=ask off, and -G shows it).
	HasCommand bool
	// StdioForward says -W was given: ClearAllForwardings and
	// ExitOnForwardFailure then default to yes (still first value wins).
	StdioForward bool

	// Environment. Zero values mean the real ones; tests set them.
	Home         string // the local user's home directory
	LocalUser    string // the local user name (%u, Match localuser)
	SystemConfig string // default /etc/ssh/ssh_config
	// EnvHome is $HOME, which OpenSSH's glob(3) uses for ~ in Include
	// (while ~ elsewhere and %d are the passwd home, Home). Default: the
	// HOME environment variable, else Home.
	EnvHome string
}

// Config is the resolved configuration for one destination, with defaults
// filled in and values expanded for use (~ and the %-tokens each keyword
// takes). Fields are those rssh acts on; Dump prints them in ssh -G form.
type Config struct {
	Host     string // the host as given (%n)
	Hostname string // HostName with %h expanded, or Host
	Port     int
	User     string

	IdentityFiles    []string // command line first, then config; OpenSSH's defaults if none
	CertificateFiles []string
	IdentitiesOnly   bool
	IdentityAgent    string // "" unset (use SSH_AUTH_SOCK), "none", a path, or "$VAR"/"SSH_AUTH_SOCK"
	AddKeysToAgent   string // "no", "yes", "ask" or "confirm"
	// AddKeysToAgentLifetime is the lifetime given with AddKeysToAgent
	// (0: none).
	AddKeysToAgentLifetime time.Duration

	// RevokedHostKeys is the file of revoked host keys (a KRL or public
	// keys), expanded; "" when none.
	RevokedHostKeys string

	ProxyJump    string // "" when none; as ssh -G prints it, for ParseProxyJump
	ProxyCommand string // "" when none; tokens are expanded at use by ExpandProxyCommand

	StrictHostKeyChecking        string   // "yes", "no", "accept-new" or "ask"
	UserKnownHostsFiles          []string // expanded
	GlobalKnownHostsFiles        []string // expanded
	HostKeyAlias                 string
	HostKeyAlgorithms            []string
	KexAlgorithms                []string
	Ciphers                      []string
	MACs                         []string
	PubkeyAcceptedAlgorithms     []string
	PubkeyAuthentication         bool
	PasswordAuthentication       bool
	KbdInteractiveAuthentication bool
	NumberOfPasswordPrompts      int

	// OrderHostKeyAlgorithms is OpenSSH's rule for putting the algorithms
	// of the host's known keys first: HostKeyAlgorithms unset, or changed
	// with a leading + or -. A list of its own (or ^) is the user's order.
	OrderHostKeyAlgorithms bool
	// KnownHostsCommand is the command as written ("" for none); its
	// arguments take ExpandKnownHostsCommandArg's tokens at use.
	KnownHostsCommand string

	ConnectTimeout     time.Duration // 0 means none
	ConnectionAttempts int
	BatchMode          bool
	HashKnownHosts     bool // record new host keys hashed (Debian's system config sets it)
	AddressFamily      string
	BindAddress        string
	BindInterface      string // used when BindAddress is not set, as ssh
	TCPKeepAlive       bool
	Compression        bool

	// rssh's own settings (ssh_config keywords OpenSSH ignores with
	// "IgnoreUnknown Rssh*").
	RequireEnv     bool          // RsshRequireEnv: a refused token is fatal
	ForwardSecrets bool          // RsshForwardSecrets: the token stays here; the host asks per reference
	SecretConfirm  bool          // RsshSecretConfirm: ask before each first read of a reference
	TokenTransport string        // RsshTokenTransport: "env" (default) or "lc"
	TokenTTL       time.Duration // RsshTokenTTL: cache lifetime; 0 means the default

	SetEnv    []string // the winning SetEnv line's NAME=value items, quotes removed
	SetEnvPos Pos      // where that line is
	// Origins is where each keyword (lowercase) was first set by a line
	// that applies: the line that won for a single value, the first of a
	// list. A keyword not in it took its default.
	Origins map[string]Pos
	SendEnv []string // patterns

	LocalForwards        []string // raw specs as ssh -G prints them
	RemoteForwards       []string
	DynamicForwards      []string
	ClearAllForwardings  bool
	ExitOnForwardFailure bool
	GatewayPorts         bool   // forwards without a bind address listen on all interfaces
	ForwardAgent         string // "yes", "no", or a socket path / $VAR
	// PermitRemoteOpen is the destinations a remote dynamic forward (-R
	// with no destination: SOCKS served here) may connect to, as given:
	// nil or ["any"] for any, ["none"] for none, else host:port items
	// where "*" is any host or any port.
	PermitRemoteOpen []string

	RequestTTY    string // "auto" (default), "no", "yes", "force"
	SessionType   string // "default", "none", "subsystem"
	RemoteCommand string // expanded
	StdinNull     bool
	// ForkAfterAuthentication (-f) sends rssh to the background once
	// authenticated and its forwards are up.
	ForkAfterAuthentication bool
	EscapeChar              string // "~" by default, "none", or the one byte (^X is stored as the control byte)
	// EnableEscapeCommandline allows the ~C command line, which OpenSSH
	// 9.2 turned off by default.
	EnableEscapeCommandline bool
	// WarnWeakCrypto (OpenSSH 10.1, default yes) warns when the key
	// exchange negotiated is not post-quantum.
	WarnWeakCrypto bool

	ServerAliveInterval time.Duration
	ServerAliveCountMax int

	// RekeyLimit is the number of bytes after which a new key exchange
	// starts (0: the cipher's default); RekeyInterval the time (0: none).
	RekeyLimit    uint64
	RekeyInterval time.Duration

	// LocalCommand runs on this machine after connecting when
	// PermitLocalCommand is set; "" when none. Its tokens are expanded at
	// use by ExpandLocalCommand, as ssh expands them after connecting.
	LocalCommand       string
	PermitLocalCommand bool

	LogLevel string // QUIET FATAL ERROR INFO VERBOSE DEBUG1 DEBUG2 DEBUG3

	// UpdateHostKeys is "yes", "no" or "ask" as ssh ends up with it (its
	// default and its turning "ask" off), as -G prints it.
	UpdateHostKeys string

	keyAlias string          // %k: HostKeyAlias or Host
	toks     tokens          // the client %-tokens, for commands expanded at use
	set      map[string]bool // algorithm keywords the user set
	dump     dumpState       // what -G prints where it differs from the above
}

// Jump is one hop of a ProxyJump chain.
type Jump struct {
	User string // "" when not given
	Host string
	Port int // 0 when not given
}

// IsSet reports whether the configuration (files or command line) set an
// algorithm keyword — "ciphers", "macs", "kexalgorithms",
// "hostkeyalgorithms" or "pubkeyacceptedalgorithms" — rather than leaving
// OpenSSH's default.
func (c *Config) IsSet(keyword string) bool { return c.set[keyword] }
