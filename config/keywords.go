package config

import (
	"maps"
	"sort"
)

// The keyword table, as readconf.c's keywords[]: every keyword OpenSSH
// 9.2 (with Debian's GSSAPI patches) accepts, rssh's own, and the
// platform's (keywords_darwin.go), each with how its line is parsed and
// where its value goes. processLine (process.go) is the driver: it
// splits the line, finds the row, records where the keyword was first
// set, runs the row's parser and refuses arguments left over.
//
// A row is one of:
//   - a scalar option rssh acts on: flag, choice, integer, seconds, str,
//     algs, command, or intOpt/strOpt with a value parser of their own
//     (port, log level, …). The first value that applies wins, as in
//     readconf.c: the parser's value is stored only while the field is
//     still unset (-1 or nil in options);
//   - a directive (Host, Match, Include) or a keyword whose value is a
//     list, or several fields, with its own method (directives.go);
//   - a keyword rssh does not act on: kept(kind) or keptChoice, checked as
//     strictly as ssh checks it and kept as given for -G (dumpkeys.go);
//   - an alias, another name for a keyword whose row applies under its
//     name.
//
// Acting on a keyword is one row here; to act on ControlMaster, say:
//
//	"controlmaster": choice(multiControlMaster, func(o *options) *int { return &o.controlMaster }),
//
// with its field in options (unset, -1, in newOptions), its default in
// fillDefaults, its Config field in fill and its -G line in renderDump
// taken from the field instead of the kept value.
var keywords map[string]keyword

// A keyword is one row of the table.
type keyword struct {
	// parse reads the line's arguments (l.next, l.arg) and sets the
	// option; arguments it leaves are "extra arguments at end of line".
	parse func(l *line) error
	// alias names the keyword this one is another name for: its row
	// applies, and errors and Origins name it.
	alias string
	// directive marks Host, Match and Include: refused on the command
	// line, and not an option (no Origins entry).
	directive bool
}

// kind says how the arguments of a keyword rssh does not act on are
// checked (keepIgnored) and kept (keep).
type kind int

const (
	kFlag        kind = iota // yes/no/true/false
	kMulti                   // one of a fixed set (keptChoice's table)
	kInt                     // integer
	kTime                    // time value or "none"
	kString                  // exactly one argument
	kStringArray             // one or more arguments, "none" alone
	kCommand                 // the raw rest of the line
	kAny                     // anything (deprecated, unsupported, ignored)
	kChecked                 // ignored, but its value checked as ssh does (checkValue)
)

func init() {
	keywords = map[string]keyword{
		// Deprecated and unsupported: accepted, ignored.
		"protocol": kept(kAny), "cipher": kept(kAny), "fallbacktorsh": kept(kAny),
		"globalknownhostsfile2": kept(kAny), "rhostsauthentication": kept(kAny),
		"userknownhostsfile2": kept(kAny), "useroaming": kept(kAny), "usersh": kept(kAny),
		"useprivilegedport": kept(kAny), "useblacklistedkeys": kept(kAny),
		"afstokenpassing": kept(kAny), "kerberosauthentication": kept(kAny),
		"kerberostgtpassing": kept(kAny), "rsaauthentication": kept(kAny),
		"rhostsrsaauthentication": kept(kAny), "compressionlevel": kept(kAny),

		// Directives.
		"host":    directive((*line).host),
		"match":   directive((*line).match),
		"include": directive((*line).include),

		// Where to connect and as whom.
		"hostname":      str(func(o *options) **sval { return &o.hostname }),
		"user":          str(func(o *options) **sval { return &o.user }),
		"port":          intOpt((*line).portArg, func(o *options) *int { return &o.port }),
		"hostkeyalias":  str(func(o *options) **sval { return &o.hostKeyAlias }),
		"addressfamily": choice(multiAF, func(o *options) *int { return &o.addressFamily }),
		"bindaddress":   str(func(o *options) **sval { return &o.bindAddress }),
		"bindinterface": str(func(o *options) **sval { return &o.bindInterface }),
		"proxycommand":  command(func(o *options) **sval { return &o.proxyCommand }),
		"proxyjump":     {parse: (*line).proxyJump},

		"connecttimeout":          seconds(func(o *options) *int { return &o.connectTimeout }),
		"connectionattempts":      integer(func(o *options) *int { return &o.connAttempts }),
		"serveraliveinterval":     seconds(func(o *options) *int { return &o.aliveInterval }),
		"serveralivecountmax":     integer(func(o *options) *int { return &o.aliveCountMax }),
		"tcpkeepalive":            flag(func(o *options) *int { return &o.tcpKeepAlive }),
		"compression":             choice(multiCompression, func(o *options) *int { return &o.compression }),
		"batchmode":               flag(func(o *options) *int { return &o.batchMode }),
		"loglevel":                intOpt((*line).logLevelArg, func(o *options) *int { return &o.logLevel }),
		"escapechar":              intOpt((*line).escapeCharArg, func(o *options) *int { return &o.escapeChar }),
		"enableescapecommandline": flag(func(o *options) *int { return &o.escapeCmdline }),
		"warnweakcrypto":          choice(multiWarnWeak, func(o *options) *int { return &o.warnWeakCrypto }), // OpenSSH 10.1's: 9.2 does not know it

		// Canonicalization.
		"canonicalizehostname":        {parse: (*line).canonicalizeHostname},
		"canonicalizefallbacklocal":   flag(func(o *options) *int { return &o.canonFallback }),
		"canonicalizemaxdots":         integer(func(o *options) *int { return &o.canonMaxDots }),
		"canonicaldomains":            {parse: (*line).canonicalDomains},
		"canonicalizepermittedcnames": {parse: (*line).permittedCNAMEs},

		// Host keys.
		"stricthostkeychecking": choice(multiStrict, func(o *options) *int { return &o.strictHostKey }),
		"userknownhostsfile":    {parse: (*line).userKnownHostsFile},
		"globalknownhostsfile":  {parse: (*line).globalKnownHostsFile},
		"hashknownhosts":        flag(func(o *options) *int { return &o.hashKnownHosts }),
		"knownhostscommand":     command(func(o *options) **sval { return &o.knownHostsCommand }),

		// Algorithms.
		"ciphers":                  algs(allCiphers, "SSH2 cipher spec", func(o *options) **sval { return &o.ciphers }),
		"macs":                     algs(allMACs, "SSH2 MAC spec", func(o *options) **sval { return &o.macs }),
		"kexalgorithms":            algs(allKex, "SSH2 KexAlgorithms", func(o *options) **sval { return &o.kex }),
		"hostkeyalgorithms":        keyAlgs(func(o *options) **sval { return &o.hostKeyAlgs }),
		"pubkeyacceptedalgorithms": keyAlgs(func(o *options) **sval { return &o.pubkeyAlgs }),

		// Authentication.
		"pubkeyauthentication":         choice(multiPubkey, func(o *options) *int { return &o.pubkeyAuth }),
		"passwordauthentication":       flag(func(o *options) *int { return &o.passwordAuth }),
		"kbdinteractiveauthentication": flag(func(o *options) *int { return &o.kbdInteractive }),
		"numberofpasswordprompts":      integer(func(o *options) *int { return &o.numPassPrompts }),
		"identityfile":                 {parse: (*line).identityFile},
		"certificatefile":              {parse: (*line).certificateFile},
		"identitiesonly":               flag(func(o *options) *int { return &o.identitiesOnly }),
		"identityagent":                strOpt((*line).agentPathArg, func(o *options) **sval { return &o.identityAgent }),
		"addkeystoagent":               {parse: (*line).addKeysToAgent},
		"forwardagent":                 {parse: (*line).forwardAgent},

		// The session.
		"requesttty":              choice(multiTTY, func(o *options) *int { return &o.requestTTY }),
		"sessiontype":             choice(multiSession, func(o *options) *int { return &o.sessionType }),
		"remotecommand":           command(func(o *options) **sval { return &o.remoteCommand }),
		"stdinnull":               flag(func(o *options) *int { return &o.stdinNull }),
		"forkafterauthentication": flag(func(o *options) *int { return &o.forkAfterAuth }),
		"sendenv":                 {parse: (*line).sendEnv},
		"setenv":                  {parse: (*line).setEnv},

		// Forwarding.
		"localforward":         {parse: (*line).forward},
		"remoteforward":        {parse: (*line).forward},
		"dynamicforward":       {parse: (*line).forward},
		"clearallforwardings":  flag(func(o *options) *int { return &o.clearForwardings }),
		"exitonforwardfailure": flag(func(o *options) *int { return &o.exitOnFwdFailure }),
		"gatewayports":         flag(func(o *options) *int { return &o.gatewayPorts }),

		"ignoreunknown": str(func(o *options) **sval { return &o.ignoredUnknown }),

		// rssh's own settings. OpenSSH rejects them unless the config says
		// "IgnoreUnknown Rssh*", which the README tells users to add.
		"rsshrequireenv":     flag(func(o *options) *int { return &o.requireEnv }),
		"rsshforwardsecrets": flag(func(o *options) *int { return &o.forwardSecrets }),
		"rsshsecretconfirm":  flag(func(o *options) *int { return &o.secretConfirm }),
		"rsshtokentransport": strOpt((*line).tokenTransportArg, func(o *options) **sval { return &o.tokenTransport }),
		"rsshtokenttl":       seconds(func(o *options) *int { return &o.tokenTTL }),

		// Kept for -G, not acted on.
		"gssapiauthentication": kept(kFlag), "gssapidelegatecredentials": kept(kFlag),
		"gssapikeyexchange": kept(kFlag), "gssapitrustdns": kept(kFlag),
		"gssapirenewalforcesrekey": kept(kFlag), "gssapiclientidentity": kept(kString),
		"gssapiserveridentity": kept(kString), "gssapikexalgorithms": kept(kString),
		"pkcs11provider": kept(kString), "smartcarddevice": kept(kString),
		"forwardx11": kept(kFlag), "forwardx11trusted": kept(kFlag),
		"forwardx11timeout": kept(kTime), "xauthlocation": kept(kString),
		"kbdinteractivedevices": kept(kString), "hostbasedauthentication": kept(kFlag),
		"permitremoteopen": kept(kChecked), "checkhostip": kept(kFlag),
		"syslogfacility": kept(kChecked), "logverbose": kept(kStringArray),
		"preferredauthentications": kept(kString), "casignaturealgorithms": kept(kChecked),
		"enablesshkeysign": kept(kFlag), "verifyhostkeydns": keptChoice(multiYesNoAsk),
		"nohostauthenticationforlocalhost": kept(kFlag), "rekeylimit": kept(kChecked),
		"controlpath": kept(kString), "controlmaster": keptChoice(multiControlMaster),
		"controlpersist": kept(kChecked), "tunnel": keptChoice(multiTunnel),
		"tunneldevice": kept(kChecked), "localcommand": kept(kCommand),
		"permitlocalcommand": kept(kFlag), "visualhostkey": kept(kFlag),
		"ipqos": kept(kChecked), "proxyusefdpass": kept(kFlag),
		"streamlocalbindmask": kept(kChecked), "streamlocalbindunlink": kept(kFlag),
		"revokedhostkeys": kept(kString), "fingerprinthash": kept(kChecked),
		"updatehostkeys": keptChoice(multiYesNoAsk), "hostbasedacceptedalgorithms": kept(kChecked),
		"securitykeyprovider": kept(kString), "requiredrsasize": kept(kInt),

		// Other names.
		"challengeresponseauthentication": alias("kbdinteractiveauthentication"),
		"skeyauthentication":              alias("kbdinteractiveauthentication"),
		"tisauthentication":               alias("kbdinteractiveauthentication"),
		"dsaauthentication":               alias("pubkeyauthentication"),
		"identityfile2":                   alias("identityfile"),
		"keepalive":                       alias("tcpkeepalive"),
		"pubkeyacceptedkeytypes":          alias("pubkeyacceptedalgorithms"),
		"hostbasedkeytypes":               alias("hostbasedacceptedalgorithms"),
		"protocolkeepalives":              alias("serveraliveinterval"), // Debian
		"setuptimeout":                    alias("serveraliveinterval"), // Debian
	}
	maps.Copy(keywords, platformKeywords)
}

// Row constructors. intField and strField pick the options field a row
// sets.
type (
	intField func(*options) *int
	strField func(*options) **sval
)

// intOpt is the row of a number option read by parse.
func intOpt(parse func(*line) (int, error), f intField) keyword {
	return keyword{parse: func(l *line) error {
		v, err := parse(l)
		if err != nil {
			return err
		}
		l.setInt(f(l.o), v)
		return nil
	}}
}

// strOpt is the row of a string option read by parse.
func strOpt(parse func(*line) (string, error), f strField) keyword {
	return keyword{parse: func(l *line) error {
		v, err := parse(l)
		if err != nil {
			return err
		}
		l.setStr(f(l.o), v)
		return nil
	}}
}

// choice is parse_multistate: one of m's names.
func choice(m []multi, f intField) keyword {
	return intOpt(func(l *line) (int, error) { return l.choiceArg(m) }, f)
}

// flag is parse_flag: yes, no, true or false.
func flag(f intField) keyword { return choice(multiFlag, f) }

// integer is parse_int.
func integer(f intField) keyword { return intOpt((*line).intArg, f) }

// seconds is parse_time: a time value, "none" leaving the option unset.
func seconds(f intField) keyword { return intOpt((*line).timeArg, f) }

// str is parse_string: one argument.
func str(f strField) keyword { return strOpt((*line).stringArg, f) }

// command is parse_command: the raw rest of the line.
func command(f strField) keyword { return strOpt((*line).commandArg, f) }

// algs is an algorithm list of the names in all, checked unless it
// removes (-); what names it in the error.
func algs(all, what string, f strField) keyword {
	valid := func(s string) bool { return namesValid(s, all) }
	return strOpt(func(l *line) (string, error) { return l.algsArg(valid, what) }, f)
}

// keyAlgs is a list of key types.
func keyAlgs(f strField) keyword {
	return strOpt(func(l *line) (string, error) { return l.algsArg(keyNamesValid, "key types") }, f)
}

func directive(parse func(*line) error) keyword {
	return keyword{parse: parse, directive: true}
}

func alias(name string) keyword { return keyword{alias: name} }

// kept is the row of a keyword rssh does not act on: its arguments are
// checked as ssh checks them (keepIgnored) and kept as given for -G.
func kept(k kind) keyword {
	return keyword{parse: func(l *line) error { return l.keepIgnored(k, nil) }}
}

// keptChoice is kept(kMulti) with the names ssh accepts.
func keptChoice(m []multi) keyword {
	return keyword{parse: func(l *line) error { return l.keepIgnored(kMulti, m) }}
}

// AllKeywords returns every lowercase keyword the parser accepts (OpenSSH
// 9.2's, Debian's aliases and rssh's own), sorted. The differential test
// against ssh uses it to make sure it generates values for each one.
func AllKeywords() []string {
	out := make([]string, 0, len(keywords))
	for k := range keywords {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
