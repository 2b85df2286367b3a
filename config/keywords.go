package config

import "sort"

// kind says how a keyword's arguments are parsed and validated. Keywords
// rssh resolves have their own code in processLine; the others are parsed
// only as far as OpenSSH would reject them, so a config ssh refuses is
// refused here too and one ssh accepts loads here.
type kind int

const (
	kOurs        kind = iota // handled by name in processLine
	kFlag                    // yes/no/true/false
	kMulti                   // one of a fixed set (values in multiValues)
	kInt                     // integer
	kTime                    // time value or "none"
	kString                  // exactly one argument
	kStringArray             // one or more arguments, "none" alone
	kCommand                 // the raw rest of the line
	kAny                     // anything (deprecated, unsupported, ignored)
	kNoArgCheck              // any arguments, parsed elsewhere in OpenSSH
	kChecked                 // ignored, but its value checked as ssh does (checkValue)
)

// keywords maps every lowercase keyword OpenSSH 9.2 (with Debian's
// GSSAPI patches) accepts to its kind; aliases map to the same handling
// through canonical.
var keywords = map[string]kind{
	// Deprecated and unsupported: accepted, ignored.
	"protocol": kAny, "cipher": kAny, "fallbacktorsh": kAny, "globalknownhostsfile2": kAny,
	"rhostsauthentication": kAny, "userknownhostsfile2": kAny, "useroaming": kAny,
	"usersh": kAny, "useprivilegedport": kAny, "useblacklistedkeys": kAny,
	"afstokenpassing": kAny, "kerberosauthentication": kAny, "kerberostgtpassing": kAny,
	"rsaauthentication": kAny, "rhostsrsaauthentication": kAny, "compressionlevel": kAny,

	"gssapiauthentication": kFlag, "gssapidelegatecredentials": kFlag,
	"gssapikeyexchange": kFlag, "gssapitrustdns": kFlag, "gssapirenewalforcesrekey": kFlag,
	"gssapiclientidentity": kString, "gssapiserveridentity": kString,
	"gssapikexalgorithms": kString,
	"pkcs11provider":      kString, "smartcarddevice": kString,

	"forwardagent": kOurs, "forwardx11": kFlag, "forwardx11trusted": kFlag,
	"forwardx11timeout": kTime, "exitonforwardfailure": kOurs, "xauthlocation": kString,
	"gatewayports": kOurs, "passwordauthentication": kOurs,
	"kbdinteractiveauthentication": kOurs, "kbdinteractivedevices": kString,
	"challengeresponseauthentication": kOurs, "skeyauthentication": kOurs,
	"tisauthentication": kOurs, "pubkeyauthentication": kOurs, "dsaauthentication": kOurs,
	"hostbasedauthentication": kFlag, "identityfile": kOurs, "identityfile2": kOurs,
	"identitiesonly": kOurs, "certificatefile": kOurs, "addkeystoagent": kOurs,
	"identityagent": kOurs, "hostname": kOurs, "hostkeyalias": kOurs, "proxycommand": kOurs,
	"port": kOurs, "ciphers": kOurs, "macs": kOurs, "remoteforward": kOurs,
	"localforward": kOurs, "permitremoteopen": kChecked, "user": kOurs, "host": kOurs,
	"match": kOurs, "escapechar": kOurs, "globalknownhostsfile": kOurs,
	"userknownhostsfile": kOurs, "connectionattempts": kOurs, "batchmode": kOurs,
	"checkhostip": kFlag, "stricthostkeychecking": kOurs, "compression": kOurs,
	"tcpkeepalive": kOurs, "keepalive": kOurs, "numberofpasswordprompts": kOurs,
	"syslogfacility": kChecked, "loglevel": kOurs, "logverbose": kStringArray,
	"dynamicforward": kOurs, "preferredauthentications": kString,
	"hostkeyalgorithms": kOurs, "casignaturealgorithms": kChecked, "bindaddress": kOurs,
	"bindinterface": kOurs, "clearallforwardings": kOurs, "enablesshkeysign": kFlag,
	"verifyhostkeydns": kMulti, "nohostauthenticationforlocalhost": kFlag,
	"rekeylimit": kChecked, "connecttimeout": kOurs, "addressfamily": kOurs,
	"serveraliveinterval": kOurs, "protocolkeepalives": kOurs, "setuptimeout": kOurs,
	"serveralivecountmax": kOurs, "sendenv": kOurs, "setenv": kOurs,
	"controlpath": kString, "controlmaster": kMulti, "controlpersist": kChecked,
	// rssh's own settings. OpenSSH rejects them unless the config says
	// "IgnoreUnknown Rssh*", which the README tells users to add.
	"rsshrequireenv": kOurs, "rsshtokentransport": kOurs, "rsshtokenttl": kOurs,
	"hashknownhosts": kOurs, "include": kOurs, "tunnel": kMulti, "tunneldevice": kChecked,
	"localcommand": kCommand, "permitlocalcommand": kFlag, "remotecommand": kOurs,
	"visualhostkey": kFlag, "kexalgorithms": kOurs, "ipqos": kChecked,
	"requesttty": kOurs, "sessiontype": kOurs, "stdinnull": kOurs,
	"forkafterauthentication": kOurs, "proxyusefdpass": kFlag,
	"canonicaldomains": kOurs, "canonicalizefallbacklocal": kOurs,
	"canonicalizehostname": kOurs, "canonicalizemaxdots": kOurs,
	"canonicalizepermittedcnames": kOurs, "streamlocalbindmask": kChecked,
	"streamlocalbindunlink": kFlag, "revokedhostkeys": kString, "fingerprinthash": kChecked,
	"updatehostkeys": kMulti, "hostbasedacceptedalgorithms": kChecked,
	"hostbasedkeytypes": kChecked, "pubkeyacceptedalgorithms": kOurs,
	"pubkeyacceptedkeytypes": kOurs, "ignoreunknown": kOurs, "proxyjump": kOurs,
	"securitykeyprovider": kString, "knownhostscommand": kCommand,
	"requiredrsasize": kInt, "enableescapecommandline": kOurs,
	// OpenSSH 10.1's: 9.2 does not know it.
	"warnweakcrypto": kOurs,
}

// canonical maps aliases to the keyword processLine handles.
var canonical = map[string]string{
	"challengeresponseauthentication": "kbdinteractiveauthentication",
	"skeyauthentication":              "kbdinteractiveauthentication",
	"tisauthentication":               "kbdinteractiveauthentication",
	"dsaauthentication":               "pubkeyauthentication",
	"identityfile2":                   "identityfile",
	"keepalive":                       "tcpkeepalive",
	"pubkeyacceptedkeytypes":          "pubkeyacceptedalgorithms",
	"hostbasedkeytypes":               "hostbasedacceptedalgorithms",
	"protocolkeepalives":              "serveraliveinterval", // Debian
	"setuptimeout":                    "serveraliveinterval", // Debian
}

// multiValues are the accepted values of kMulti keywords (compared
// case-insensitively, as parse_multistate_value does).
var multiValues = map[string][]string{
	"verifyhostkeydns": {"true", "false", "yes", "no", "ask"},
	"updatehostkeys":   {"true", "false", "yes", "no", "ask"},
	"controlmaster":    {"true", "yes", "false", "no", "auto", "ask", "autoask"},
	"tunnel":           {"ethernet", "point-to-point", "true", "yes", "false", "no"},
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

func init() {
	for k, v := range platformKeywords {
		keywords[k] = v
	}
}
