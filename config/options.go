package config

import (
	"fmt"
	"strconv"
	"strings"
)

// options mirrors the part of OpenSSH's Options struct rssh resolves, with
// OpenSSH's "unset" sentinels (-1 for numbers, nil for strings) so that
// first-value-wins behaves exactly as in readconf.c, including its quirks
// (a "none" time value leaves the option unset; a later line may set it).
type options struct {
	forwardAgent     int
	forwardAgentSock *sval
	exitOnFwdFailure int
	forkAfterAuth    int
	clearForwardings int
	passwordAuth     int
	kbdInteractive   int
	pubkeyAuth       int // one of pubkey* below
	batchMode        int
	requireEnv       int // rssh: RsshRequireEnv
	forwardSecrets   int // rssh: RsshForwardSecrets
	secretConfirm    int // rssh: RsshSecretConfirm
	tokenTTL         int // rssh: RsshTokenTTL, seconds
	hashKnownHosts   int
	strictHostKey    int
	compression      int
	tcpKeepAlive     int
	port             int
	addressFamily    int
	connAttempts     int
	connectTimeout   int
	numPassPrompts   int
	logLevel         int
	identitiesOnly   int
	aliveInterval    int
	aliveCountMax    int
	escapeChar       int
	addKeys          int
	addKeysLife      int
	requestTTY       int
	sessionType      int
	stdinNull        int
	gatewayPorts     int
	escapeCmdline    int // EnableEscapeCommandline
	warnWeakCrypto   int // WarnWeakCrypto (OpenSSH 10.1)

	canonHostname  int
	canonMaxDots   int
	canonFallback  int
	canonDomains   []string
	canonCNAMEs    []string
	canonHostPos   Pos
	canonDomainPos Pos

	ciphers, macs, kex, hostKeyAlgs, pubkeyAlgs *sval

	hostname, hostKeyAlias, proxyCommand, user, bindAddress *sval
	bindInterface                                           *sval
	identityAgent, remoteCommand, ignoredUnknown            *sval
	tokenTransport                                          *sval // rssh: RsshTokenTransport
	knownHostsCommand                                       *sval

	jumpUser, jumpHost, jumpExtra *string
	jumpPort                      int
	jumpPos                       Pos

	identityFiles []fileEntry
	certFiles     []fileEntry
	systemHosts   []string
	userHosts     []string
	userHostsPos  Pos

	localFwds  []forward
	remoteFwds []forward

	sendEnv   []string
	setEnv    []string
	setEnvPos Pos

	// kept holds the keywords rssh does not act on, as given (first value
	// wins, as readconf.c), for -G to print as ssh does (dumpkeys.go).
	kept map[string][]string
}

// sval is a string option with where it was set.
type sval struct {
	v   string
	pos Pos
}

type fileEntry struct {
	path         string
	userProvided bool
	pos          Pos
}

const (
	pubkeyNo = iota
	pubkeyUnbound
	pubkeyHostBound
	pubkeyAll
)

const (
	strictOff = iota
	strictNew
	strictYes
	strictAsk
)

const (
	ttyNo = iota
	ttyYes
	ttyAuto
	ttyForce
)

const (
	sessionNone = iota
	sessionSubsystem
	sessionDefault
)

const (
	afAny = iota
	afInet
	afInet6
)

const escapeNone = -2

// Limits from OpenSSH (SSH_MAX_IDENTITY_FILES, SSH_MAX_CERTIFICATE_FILES,
// SSH_MAX_HOSTS_FILES, MAX_CANON_DOMAINS).
const (
	maxIdentityFiles = 100
	maxCertFiles     = 100
	maxHostsFiles    = 16
	maxCanonDomains  = 32
)

func newOptions() *options {
	return &options{
		forwardAgent: -1, exitOnFwdFailure: -1, forkAfterAuth: -1, clearForwardings: -1,
		passwordAuth: -1, kbdInteractive: -1, pubkeyAuth: -1, batchMode: -1, requireEnv: -1, forwardSecrets: -1, secretConfirm: -1, tokenTTL: -1, hashKnownHosts: -1,
		strictHostKey: -1, compression: -1, tcpKeepAlive: -1, port: -1,
		addressFamily: -1, connAttempts: -1, connectTimeout: -1,
		numPassPrompts: -1, logLevel: -1, identitiesOnly: -1,
		aliveInterval: -1, aliveCountMax: -1, escapeChar: -1, addKeys: -1,
		addKeysLife: -1, requestTTY: -1, sessionType: -1, stdinNull: -1, gatewayPorts: -1, escapeCmdline: -1, warnWeakCrypto: -1,
		canonHostname: -1, canonMaxDots: -1, canonFallback: -1, jumpPort: -1,
	}
}

type multi struct {
	key string
	val int
}

var (
	multiFlag   = []multi{{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}}
	multiStrict = []multi{{"true", strictYes}, {"false", strictOff}, {"yes", strictYes},
		{"no", strictOff}, {"ask", strictAsk}, {"off", strictOff}, {"accept-new", strictNew}}
	multiAddKeys = []multi{{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},
		{"ask", 2}, {"confirm", 3}}
	multiAF  = []multi{{"inet", afInet}, {"inet6", afInet6}, {"any", afAny}}
	multiTTY = []multi{{"true", ttyYes}, {"yes", ttyYes}, {"false", ttyNo}, {"no", ttyNo},
		{"force", ttyForce}, {"auto", ttyAuto}}
	multiSession = []multi{{"none", sessionNone}, {"subsystem", sessionSubsystem},
		{"default", sessionDefault}}
	multiCanon  = []multi{{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"always", 2}}
	multiPubkey = []multi{{"true", pubkeyAll}, {"false", pubkeyNo}, {"yes", pubkeyAll},
		{"no", pubkeyNo}, {"unbound", pubkeyUnbound}, {"host-bound", pubkeyHostBound}}
	multiCompression = []multi{{"yes", 1}, {"no", 0}}
	// OpenSSH 10.1's multistate_warnweakcrypto: no-pq-kex turns off the one
	// warning there is, so it is "no" too.
	multiWarnWeak = []multi{{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"no-pq-kex", 0}}
)

func parseMulti(arg string, m []multi) (int, bool) {
	for _, e := range m {
		if strings.EqualFold(arg, e.key) {
			return e.val, true
		}
	}
	return -1, false
}

// fmtMulti names a value as ssh -G does: the first key with that value.
func fmtMulti(v int, m []multi) string {
	if v == -1 {
		return "unset"
	}
	for _, e := range m {
		if e.val == v {
			return e.key
		}
	}
	return "UNKNOWN"
}

func fmtFlag(v int) string {
	switch v {
	case 0:
		return "no"
	case 1:
		return "yes"
	case -1:
		return "unset"
	}
	return "UNKNOWN"
}

// strtonum is OpenBSD's strtonum(3): a base-10 integer (leading blanks and
// a sign allowed, as strtoll) within [lo, hi]; the error is "invalid",
// "too small" or "too large".
func strtonum(s string, lo, hi int64) (int64, string) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	if t == "" {
		return 0, "invalid"
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			if strings.HasPrefix(t, "-") {
				return 0, "too small"
			}
			return 0, "too large"
		}
		return 0, "invalid"
	}
	if n < lo {
		return 0, "too small"
	}
	if n > hi {
		return 0, "too large"
	}
	return n, ""
}

// convtime parses an OpenSSH time value ("90", "1h30m", "2d") into seconds
// as 9.2's convtime does (each number read with strtol, so blanks and a
// sign before it are allowed); -1 when invalid.
func convtime(s string) int {
	if s == "" {
		return -1
	}
	const intMax = 1<<31 - 1
	total := int64(0)
	for s != "" {
		i := 0
		for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
			i++
		}
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
		secs, err := strconv.ParseInt(s[start:i], 10, 64)
		if err != nil {
			secs = intMax + 1 // out of range: caught below
		}
		if neg && secs != 0 {
			return -1
		}
		mult := int64(1)
		if i < len(s) {
			switch s[i] {
			case 's', 'S':
			case 'm', 'M':
				mult = 60
			case 'h', 'H':
				mult = 3600
			case 'd', 'D':
				mult = 86400
			case 'w', 'W':
				mult = 604800
			default:
				return -1
			}
			i++
		}
		if secs > intMax/mult {
			return -1
		}
		secs *= mult
		if total > intMax-secs {
			return -1
		}
		total += secs
		s = s[i:]
	}
	return int(total)
}

// logLevels are LogLevel's names; ssh -G prints the first name of a level,
// so QUIET shows as SILENT and DEBUG1 as DEBUG.
var logLevels = []multi{{"SILENT", 0}, {"QUIET", 0}, {"FATAL", 1}, {"ERROR", 2}, {"INFO", 3},
	{"VERBOSE", 4}, {"DEBUG", 5}, {"DEBUG1", 5}, {"DEBUG2", 6}, {"DEBUG3", 7}}

// errorf builds the package's one kind of error.
func errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// fatalf builds an error that stops reading at once, as OpenSSH's fatal().
func fatalf(pos Pos, format string, args ...any) *Error {
	e := errorf(pos, format, args...)
	e.fatal = true
	return e
}
