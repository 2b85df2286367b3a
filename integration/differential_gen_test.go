package integration

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// The differential test's generator: for every keyword config accepts, a
// handful of values (valid, edge and invalid ones), and every ssh flag rssh
// shares with it. Values may hold placeholders the runner fills per worker:
//
//	{PORT}  the port that reaches the test sshd (through the counting relay)
//	{DEAD}  a loopback port nothing listens on
//	{FREE}  a loopback port free for a forward to bind
//	{KEY}   the authorized private key        {NOKEY} a path that does not exist
//	{KH}    known_hosts trusting the server  {HKREV} a file holding the server's host key
//	{DIR}   a per-worker scratch directory   {USER}  the login user
//
// Values that would touch the machine beyond the test (a tun device, a
// ControlPersist master left running, DNS lookups, a local command writing
// to the terminal) are left out on purpose.

var (
	vFlag  = []string{"yes", "no", "true", "false", "YES", "maybe", ""}
	vTime  = []string{"0", "5", "1m", "none", "-1", "10x", "2147483648", ""}
	vInt   = []string{"0", "1", "3", "-1", "x", "99999999999", ""}
	vStr   = []string{"foo", "none", `"a b"`, ""}
	vAny   = []string{"x", "yes"}
	vAuth  = []string{"yes", "no", "maybe"}
	vMulti = []string{"yes", "no", "ask", "bogus"}
)

// keywordValues holds the values tried for each keyword. Every keyword of
// config.AllKeywords must be here (TestDifferentialCoversKeywords).
var keywordValues = map[string][]string{
	// Deprecated and unsupported: ignored by both.
	"protocol": {"2", "1"}, "cipher": vAny, "fallbacktorsh": vAny, "globalknownhostsfile2": vAny,
	"rhostsauthentication": vAny, "userknownhostsfile2": vAny, "useroaming": vAny,
	"usersh": vAny, "useprivilegedport": vAny, "useblacklistedkeys": vAny,
	"afstokenpassing": vAny, "kerberosauthentication": vAny, "kerberostgtpassing": vAny,
	"rsaauthentication": vAny, "rhostsrsaauthentication": vAny, "compressionlevel": {"6", "x"},

	"gssapiauthentication": vFlag, "gssapidelegatecredentials": vFlag,
	"gssapikeyexchange": vAuth, "gssapitrustdns": vAuth, "gssapirenewalforcesrekey": vAuth,
	"gssapiclientidentity": vStr, "gssapiserveridentity": vStr, "gssapikexalgorithms": {"gss-curve25519-sha256-", ""},
	"pkcs11provider": {"none", ""}, "smartcarddevice": {"none", ""},

	"forwardagent": {"yes", "no", "{NOKEY}.sock", "$SSH_AUTH_SOCK", "${RSSH_DIFF_UNSET}", "$bad-name", ""},
	"forwardx11":   vAuth, "forwardx11trusted": vAuth, "forwardx11timeout": vTime,
	"exitonforwardfailure": vFlag, "xauthlocation": {"/nonexistent/xauth", ""},
	"gatewayports": vFlag, "passwordauthentication": vFlag,
	"kbdinteractiveauthentication": vFlag, "kbdinteractivedevices": {"pam", ""},
	"challengeresponseauthentication": vAuth, "skeyauthentication": vAuth,
	"tisauthentication": vAuth, "pubkeyauthentication": {"yes", "no", "unbound", "host-bound", "maybe", ""},
	"dsaauthentication": vAuth, "hostbasedauthentication": vFlag,
	"identityfile":   {"{KEY}", "{NOKEY}", "{KEY}.pub", "none", "~/.ssh/id_diff", "%d/x", ""},
	"identityfile2":  {"{KEY}", "{NOKEY}"},
	"identitiesonly": vFlag, "certificatefile": {"{NOKEY}-cert.pub", "{KEY}.pub", "none", ""},
	"addkeystoagent": {"yes", "no", "ask", "confirm", "confirm 10", "10m", "bogus", "confirm x", ""},
	"identityagent":  {"none", "SSH_AUTH_SOCK", "{NOKEY}.sock", "${RSSH_DIFF_UNSET}", ""},
	"hostname":       {"127.0.0.1", "localhost", "127.1", "%h", "%%bad", "0x7f000001", ""},
	"hostkeyalias":   {"target", "other", "[127.0.0.1]:{PORT}", ""},
	"proxycommand":   {"none", "socat - TCP:%h:%p", "false", "exit 3", "socat - TCP:127.0.0.1:{DEAD}", "%z"},
	"port":           {"{PORT}", "{DEAD}", "0", "70000", "x-no-such-service", "-1", ""},
	"ciphers": {"aes128-ctr", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "+aes128-cbc",
		"-aes128-ctr", "^aes256-ctr", "aes128-cbc", "3des-cbc", "bogus", ""},
	"macs": {"hmac-sha2-256", "hmac-sha2-512-etm@openssh.com", "umac-64@openssh.com", "hmac-md5",
		"hmac-sha1", "-hmac-sha1", "bogus", ""},
	"remoteforward":    {"{FREE} 127.0.0.1:9", "127.0.0.1:{FREE} 127.0.0.1:{DEAD}", "{FREE}", "bad", "x:y:z", ""},
	"localforward":     {"127.0.0.1:{FREE} 127.0.0.1:9", "{FREE} 127.0.0.1:{DEAD}", "{FREE}", "bad spec", ""},
	"permitremoteopen": {"any", "none", "127.0.0.1:22", "127.0.0.1:*", "none any"},
	"user":             {"{USER}", "root", "nosuchuser-diff", "%u", ""},
	"host":             {"target"}, "match": {"all"},
	"escapechar":           {"~", "none", "^A", "ab", "^", ""},
	"globalknownhostsfile": {"/dev/null", "none", "{KH}", "{NOKEY}", "none /dev/null", ""},
	"userknownhostsfile":   {"{KH}", "none", "/dev/null", "{NOKEY}", "{KH} /dev/null", "none {KH}", ""},
	"connectionattempts":   {"1", "2", "0", "-1", "x", ""},
	"batchmode":            vFlag, "checkhostip": vFlag,
	"stricthostkeychecking": {"yes", "no", "ask", "accept-new", "off", "bogus", ""},
	"compression":           {"yes", "no", "delayed", "maybe", ""},
	"tcpkeepalive":          vFlag, "keepalive": vAuth,
	"numberofpasswordprompts":  vInt,
	"syslogfacility":           {"USER", "AUTH", "LOCAL7", "bogus", ""},
	"loglevel":                 {"QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG3", "bogus", ""},
	"logverbose":               {"kex.c:*", "none", "none x", ""},
	"dynamicforward":           {"127.0.0.1:{FREE}", "{FREE}", "bad:port:x", ""},
	"preferredauthentications": {"publickey", "password", "keyboard-interactive", "bogus", ""},
	"hostkeyalgorithms":        {"ssh-ed25519", "rsa-sha2-256", "+ssh-rsa", "-ssh-ed25519", "bogus", ""},
	"casignaturealgorithms":    {"ssh-ed25519", "+ssh-rsa", "bogus", ""},
	"bindaddress":              {"127.0.0.1", "127.0.0.2", "192.0.2.1", "bogus", ""},
	"bindinterface":            {"lo", "nonexistent0", ""},
	"clearallforwardings":      vFlag, "enablesshkeysign": vAuth,
	"verifyhostkeydns":                 vMulti,
	"nohostauthenticationforlocalhost": vFlag,
	"rekeylimit":                       {"1G", "1G 1h", "default none", "default", "0", "8", "bogus", "1G bogus", ""},
	"connecttimeout":                   vTime,
	"addressfamily":                    {"inet", "inet6", "any", "bogus", ""},
	"serveraliveinterval":              vTime, "protocolkeepalives": {"5", "x"}, "setuptimeout": {"5", "x"},
	"serveralivecountmax": vInt,
	"sendenv":             {"LANG", "A=B", "-LANG", "LC_*", ""},
	"setenv":              {"FOO=bar", "FOO", `FOO="two words"`, ""},
	"controlpath":         {"none", ""},
	"controlmaster":       {"no", "yes", "auto", "autoask", "bogus", ""},
	"controlpersist":      {"no", "false", "bogus", ""},
	"rsshrequireenv":      {"no"}, "rsshtokentransport": {"env"}, "rsshtokenttl": {"1h"},
	"rsshforwardsecrets": {"no"}, "rsshsecretconfirm": {"no"},
	"hashknownhosts":     vFlag,
	"include":            {"{NOKEY}"},
	"tunnel":             {"no", "false", "bogus", ""},
	"tunneldevice":       {"any", "0:1", "any:any", "bogus", ""},
	"localcommand":       {"true", "%z"},
	"permitlocalcommand": vFlag,
	"remotecommand":      {"echo rc", "none", "exit 4", "%z"},
	"visualhostkey":      vAuth,
	"kexalgorithms": {"curve25519-sha256", "sntrup761x25519-sha512@openssh.com", "diffie-hellman-group1-sha1",
		"mlkem768x25519-sha256", "+curve25519-sha256", "-curve25519-sha256", "bogus", ""},
	"ipqos":                       {"af11", "af21 cs1", "lowdelay", "throughput", "reliability", "none", "0x10", "bogus", "af11 bogus", ""},
	"requesttty":                  {"yes", "no", "auto", "force", "bogus", ""},
	"sessiontype":                 {"default", "none", "subsystem", "bogus", ""},
	"stdinnull":                   vFlag,
	"forkafterauthentication":     vFlag,
	"proxyusefdpass":              vAuth,
	"canonicaldomains":            {"none", "a none"},
	"canonicalizefallbacklocal":   vFlag,
	"canonicalizehostname":        {"no", "yes", "always", "bogus", ""},
	"canonicalizemaxdots":         vInt,
	"canonicalizepermittedcnames": {"*.a:*.b", "none", "bogus"},
	"streamlocalbindmask":         {"0177", "0777", "0800", "bogus", ""},
	"streamlocalbindunlink":       vAuth,
	"revokedhostkeys":             {"{NOKEY}", "{HKREV}", "/dev/null", ""},
	"fingerprinthash":             {"sha256", "md5", "bogus", ""},
	"updatehostkeys":              vMulti,
	"hostbasedacceptedalgorithms": {"ssh-ed25519", "bogus", ""},
	"hostbasedkeytypes":           {"ssh-ed25519", "bogus"},
	"pubkeyacceptedalgorithms":    {"ssh-ed25519", "rsa-sha2-512", "+ssh-rsa", "-ssh-ed25519", "bogus", ""},
	"pubkeyacceptedkeytypes":      {"ssh-ed25519", "rsa-sha2-512"},
	"ignoreunknown":               {"Foo*", ""},
	// Not "target": in the file that is a host jumping through itself,
	// which ssh follows forever (each ssh -W child reads the same line)
	// and rssh cuts at one hop (deliberate). -J target is in flagForms.
	"proxyjump":               {"{USER}@127.0.0.1:{PORT}", "none", "127.0.0.1:{DEAD}", "bad@@", ""},
	"securitykeyprovider":     {"internal", ""},
	"knownhostscommand":       {"/bin/false", "/bin/echo", "%z"},
	"requiredrsasize":         {"1024", "2048", "512", "x"},
	"enableescapecommandline": vFlag,
	"warnweakcrypto":          {"yes", "no", "no-pq-kex", "bogus", ""},
}

// flagForms are ssh's own flags, each an argv fragment.
var flagForms = [][]string{
	{"-p", "{PORT}"}, {"-p", "{DEAD}"}, {"-p", "0"}, {"-p", "x"}, {"-p{PORT}"},
	{"-l", "{USER}"}, {"-l", "root"}, {"-l{USER}"},
	{"-i", "{KEY}"}, {"-i", "{NOKEY}"}, {"-i{KEY}"},
	{"-c", "aes128-ctr"}, {"-c", "bogus"}, {"-c", "aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"},
	{"-m", "hmac-sha2-256"}, {"-m", "bogus"},
	{"-4"}, {"-6"}, {"-C"}, {"-T"}, {"-t"}, {"-t", "-t"}, {"-N"}, {"-q"}, {"-v"}, {"-vvv"},
	{"-A"}, {"-a"}, {"-x"}, {"-g"}, {"-n"}, {"-k"}, {"-2"}, {"-1"}, {"-f"},
	{"-e", "none"}, {"-e", "ab"}, {"-b", "127.0.0.1"}, {"-b", "192.0.2.1"}, {"-b", "bogus"}, {"-B", "lo"}, {"-B", "nonexistent0"},
	{"-E", "{DIR}/log"}, {"-J", "target"}, {"-J", "127.0.0.1:{DEAD}"},
	{"-L", "127.0.0.1:{FREE}:127.0.0.1:9"}, {"-L", "bad"}, {"-R", "{FREE}:127.0.0.1:9"}, {"-R", "x:y:z"},
	{"-D", "127.0.0.1:{FREE}"}, {"-D", "bad:port:x"}, {"-s"}, {"-V"},
	{"-X"}, {"-Y"}, {"-K"}, {"-w", "0"}, {"-S", "none"}, {"-Z"},
	{"-o", "UserKnownHostsFile=none"}, // the panic, on its own
}

// remoteCommands are the commands the cases run.
var remoteCommands = []string{"echo ran", "exit 3", "echo out; echo err >&2; exit 5", "true"}

// atom is one option of a case: argv words, or a line of the config file.
type atom struct {
	Args []string `json:"args,omitempty"`
	File string   `json:"file,omitempty"`
}

func (a atom) String() string {
	if a.File != "" {
		return "config:" + strconvQuote(a.File)
	}
	q := make([]string, len(a.Args))
	for i, s := range a.Args {
		q[i] = shellQuote(s)
	}
	return strings.Join(q, " ")
}

// keyword is the lowercase keyword (or the flag) an atom sets, for the
// known-differences table.
func (a atom) keyword() (kw, value string) {
	line := a.File
	if line == "" {
		if len(a.Args) == 0 {
			return "", ""
		}
		if f := a.Args[0]; !strings.HasPrefix(f, "-o") {
			// A flag: "-p" and its value, attached or not.
			return f[:min(2, len(f))], strings.TrimSpace(f[min(2, len(f)):] + " " + strings.Join(a.Args[1:], " "))
		}
		line = strings.TrimPrefix(a.Args[0], "-o")
		if line == "" && len(a.Args) > 1 {
			line = a.Args[1]
		}
	}
	k, v, _ := strings.Cut(line, "=")
	if i := strings.IndexAny(line, " ="); i >= 0 {
		k, v = line[:i], strings.TrimLeft(line[i+1:], " ")
	}
	return strings.ToLower(k), v
}

// testCase is one generated option set and command.
type testCase struct {
	Atoms   []atom `json:"atoms"`
	Command string `json:"command"`
}

func (c testCase) String() string {
	var parts []string
	for _, a := range c.Atoms {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, " ") + " target " + shellQuote(c.Command)
}

// holds reports a case whose correct outcome is to keep the connection
// open until killed (-N, SessionType none).
func (c testCase) holds() bool {
	for _, a := range c.Atoms {
		k, v := a.keyword()
		if a.File == "" && len(a.Args) == 1 && a.Args[0] == "-N" || k == "sessiontype" && strings.EqualFold(strings.Trim(v, `"`), "none") {
			return true
		}
	}
	return false
}

func (c testCase) forks() bool {
	for _, a := range c.Atoms {
		k, v := a.keyword()
		if a.File == "" && a.Args[0] == "-f" || k == "forkafterauthentication" && v != "no" {
			return true
		}
	}
	return false
}

// generate makes n cases from seed: each 1 to 4 atoms drawn from the
// keyword table (as -oKey=value, -o "Key value" or a config line) and the
// flags, plus a command.
func generate(seed uint64, n int) []testCase {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	keys := make([]string, 0, len(keywordValues))
	for k := range keywordValues {
		if onlyInRSSH(k) {
			continue // always a listed difference: one fixed case each (contradictions)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []testCase
	for len(out) < n {
		var c testCase
		for k := 1 + r.IntN(4); k > 0; k-- {
			if r.IntN(4) == 0 {
				c.Atoms = append(c.Atoms, atom{Args: slices.Clone(flagForms[r.IntN(len(flagForms))])})
				continue
			}
			key := keys[r.IntN(len(keys))]
			vals := keywordValues[key]
			val := vals[r.IntN(len(vals))]
			name := key
			if r.IntN(2) == 0 {
				name = strings.ToUpper(key[:1]) + key[1:]
			}
			switch r.IntN(3) {
			case 0:
				c.Atoms = append(c.Atoms, atom{Args: []string{"-o" + name + "=" + val}})
			case 1:
				c.Atoms = append(c.Atoms, atom{Args: []string{"-o", name + " " + val}})
			default:
				if key == "host" || key == "match" || key == "include" {
					// In a file these start blocks or read files; on the
					// command line both refuse them.
					c.Atoms = append(c.Atoms, atom{Args: []string{"-o", name + " " + val}})
				} else {
					c.Atoms = append(c.Atoms, atom{File: name + " " + val})
				}
			}
		}
		c.Command = remoteCommands[r.IntN(len(remoteCommands))]
		if c.holds() && c.forks() {
			continue // a forked -N child would outlive the test
		}
		out = append(out, c)
	}
	return out
}

// onlyInRSSH are keywords the 9.2 ssh refuses: rssh's own and OpenSSH
// 10.1's WarnWeakCrypto.
func onlyInRSSH(k string) bool { return strings.HasPrefix(k, "rssh") || k == "warnweakcrypto" }

// contradictions are fixed cases always run: option sets that disagree
// with each other or with the server, and the keywords only rssh knows.
var contradictions = []testCase{
	{Atoms: []atom{{Args: []string{"-o", "RsshTokenTTL=1h"}}}, Command: "true"},
	{Atoms: []atom{{File: "WarnWeakCrypto no"}}, Command: "true"},
	{Atoms: []atom{{Args: []string{"-o", "UserKnownHostsFile=none"}}, {Args: []string{"-o", "GlobalKnownHostsFile=none"}}, {Args: []string{"-o", "StrictHostKeyChecking=yes"}}}, Command: "true"},
	{Atoms: []atom{{Args: []string{"-o", "RemoteCommand=echo rc"}}}, Command: "echo cmd"},
	{Atoms: []atom{{Args: []string{"-o", "PubkeyAuthentication=no"}}}, Command: "true"},
	{Atoms: []atom{{Args: []string{"-o", "Port={DEAD}"}}, {Args: []string{"-o", "ConnectionAttempts=2"}}}, Command: "true"},
	{Atoms: []atom{{Args: []string{"-o", "HostKeyAlias=other"}}, {Args: []string{"-o", "StrictHostKeyChecking=accept-new"}}, {Args: []string{"-o", "UserKnownHostsFile={DIR}/kh-new"}}}, Command: "echo accepted"},
	{Atoms: []atom{{Args: []string{"-o", "IdentityFile={NOKEY}"}}, {Args: []string{"-i", "{KEY}"}}}, Command: "echo second"},
	{Atoms: []atom{{Args: []string{"-s"}}}, Command: "nosuchsubsystem"},
	{Atoms: []atom{{Args: []string{"-T"}}, {Args: []string{"-t", "-t"}}}, Command: "echo tty"},
	{Atoms: []atom{{Args: []string{"-o", "Ciphers=aes128-cbc"}}}, Command: "true"},
	{Atoms: []atom{{Args: []string{"-o", "KexAlgorithms=diffie-hellman-group1-sha1"}}}, Command: "true"},
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$;&|<>*?()[]{}~#`!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
