package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// -G: ssh -G's lines, in its order and its rendering of each value,
// built once per Resolve from the resolved options (renderDump) and
// written by Dump. fill (resolve.go) sets the typed Config from the same
// options; the kept keywords' renderers are in dumpkeys.go.

// dumpState is what Dump prints where ssh -G shows a value other than the
// one rssh uses (raw identity files, say).
type dumpState struct {
	identityFiles    []string
	certFiles        []string
	globalKnownHosts []string
	remoteCommand    string
	hasRemoteCommand bool
	forwardAgentSock *string
	controlPath      string // expanded, "" when none
	warnWeakSet      bool   // WarnWeakCrypto was given
	lines            []string
}

// renderDump builds the -G lines, after fill: the host, user, port and
// the expanded values come from c, the rest from o.
func (c *Config) renderDump(o *options) {
	d := &c.dump
	add := func(k, v string) { d.lines = append(d.lines, k+" "+v) }
	add("host", c.Host)
	add("user", c.User)
	add("hostname", c.Hostname)
	add("port", strconv.Itoa(c.Port))
	add("addressfamily", fmtMulti(o.addressFamily, multiAF))
	add("batchmode", fmtFlag(o.batchMode))
	add("canonicalizefallbacklocal", fmtFlag(o.canonFallback))
	add("canonicalizehostname", fmtMulti(o.canonHostname, multiCanon))
	add("checkhostip", o.keptFlag("checkhostip", 0))
	add("compression", fmtFlag(o.compression))
	add("controlmaster", o.keptMulti("controlmaster", multiControlMaster, 0))
	add("enablesshkeysign", o.keptFlag("enablesshkeysign", 0))
	add("clearallforwardings", fmtFlag(o.clearForwardings))
	add("exitonforwardfailure", fmtFlag(o.exitOnFwdFailure))
	add("fingerprinthash", o.dumpNamed("fingerprinthash", fingerprintHashes, 2))
	add("forwardx11", o.keptFlag("forwardx11", 0))
	add("forwardx11trusted", o.keptFlag("forwardx11trusted", 1)) // Debian's default
	add("gatewayports", fmtFlag(o.gatewayPorts))
	// Debian's GSSAPI patch prints these here.
	add("gssapiauthentication", o.keptFlag("gssapiauthentication", 0))
	add("gssapikeyexchange", o.keptFlag("gssapikeyexchange", 0))
	add("gssapidelegatecredentials", o.keptFlag("gssapidelegatecredentials", 0))
	add("gssapitrustdns", o.keptFlag("gssapitrustdns", 0))
	add("gssapirenewalforcesrekey", o.keptFlag("gssapirenewalforcesrekey", 0))
	if v, ok := o.keptString("gssapiclientidentity", "", false); ok {
		add("gssapiclientidentity", v)
	}
	if v, ok := o.keptString("gssapiserveridentity", "", false); ok {
		add("gssapiserveridentity", v)
	}
	if v, ok := o.keptString("gssapikexalgorithms", defGSSKexAlgs, false); ok {
		add("gssapikexalgorithms", v)
	}
	add("hashknownhosts", fmtFlag(o.hashKnownHosts))
	add("hostbasedauthentication", o.keptFlag("hostbasedauthentication", 0))
	add("identitiesonly", fmtFlag(o.identitiesOnly))
	add("kbdinteractiveauthentication", fmtFlag(o.kbdInteractive))
	add("nohostauthenticationforlocalhost", o.keptFlag("nohostauthenticationforlocalhost", 0))
	add("passwordauthentication", fmtFlag(o.passwordAuth))
	add("permitlocalcommand", o.keptFlag("permitlocalcommand", 0))
	add("proxyusefdpass", o.keptFlag("proxyusefdpass", 0))
	add("pubkeyauthentication", fmtMulti(o.pubkeyAuth, multiPubkey))
	add("requesttty", fmtMulti(o.requestTTY, multiTTY))
	add("sessiontype", fmtMulti(o.sessionType, multiSession))
	add("stdinnull", fmtFlag(o.stdinNull))
	add("forkafterauthentication", fmtFlag(o.forkAfterAuth))
	add("streamlocalbindunlink", o.keptFlag("streamlocalbindunlink", 0))
	add("stricthostkeychecking", fmtMulti(o.strictHostKey, multiStrict))
	add("tcpkeepalive", fmtFlag(o.tcpKeepAlive))
	add("tunnel", o.keptMulti("tunnel", multiTunnel, 0))
	add("verifyhostkeydns", o.keptMulti("verifyhostkeydns", multiYesNoAsk, 0))
	add("visualhostkey", o.keptFlag("visualhostkey", 0))
	add("updatehostkeys", o.keptMulti("updatehostkeys", multiYesNoAsk, 0))
	add("enableescapecommandline", fmtFlag(o.escapeCmdline))
	// Only when set: OpenSSH 9.2's ssh -G has no such key, and its
	// output must read back in ssh; 10.1 prints it here.
	if d.warnWeakSet {
		add("warnweakcrypto", fmtFlag(o.warnWeakCrypto))
	}
	add("canonicalizemaxdots", strconv.Itoa(o.canonMaxDots))
	add("connectionattempts", strconv.Itoa(o.connAttempts))
	add("forwardx11timeout", o.dumpTime("forwardx11timeout", 1200))
	add("numberofpasswordprompts", strconv.Itoa(o.numPassPrompts))
	add("serveralivecountmax", strconv.Itoa(o.aliveCountMax))
	add("serveraliveinterval", strconv.Itoa(o.aliveInterval))
	add("requiredrsasize", o.dumpInt("requiredrsasize", 1024))
	if o.bindAddress != nil {
		add("bindaddress", o.bindAddress.v)
	}
	if o.bindInterface != nil {
		add("bindinterface", o.bindInterface.v)
	}
	add("ciphers", o.ciphers.v)
	if d.controlPath != "" {
		add("controlpath", d.controlPath)
	}
	add("hostkeyalgorithms", o.hostKeyAlgs.v)
	if o.hostKeyAlias != nil {
		add("hostkeyalias", o.hostKeyAlias.v)
	}
	add("hostbasedacceptedalgorithms", o.assembleKept("hostbasedacceptedalgorithms", defKeys, allKeys))
	if o.identityAgent != nil {
		add("identityagent", c.IdentityAgent)
	}
	if o.ignoredUnknown != nil {
		add("ignoreunknown", o.ignoredUnknown.v)
	}
	if v, ok := o.keptString("kbdinteractivedevices", "", false); ok {
		add("kbdinteractivedevices", v)
	}
	add("kexalgorithms", o.kex.v)
	add("casignaturealgorithms", o.assembleKept("casignaturealgorithms", defSigs, allSigs))
	if v, ok := o.keptString("localcommand", "", true); ok {
		add("localcommand", v)
	}
	if d.hasRemoteCommand {
		add("remotecommand", d.remoteCommand)
	}
	add("loglevel", fmtMulti(o.logLevel, logLevels))
	add("macs", o.macs.v)
	if v, ok := o.keptString("pkcs11provider", "", true); ok {
		add("pkcs11provider", v)
	}
	if v, ok := o.keptString("securitykeyprovider", "internal", true); ok {
		add("securitykeyprovider", v)
	}
	if v, ok := o.keptString("preferredauthentications", "", false); ok {
		add("preferredauthentications", v)
	}
	add("pubkeyacceptedalgorithms", o.pubkeyAlgs.v)
	if v, ok := o.keptString("revokedhostkeys", "", true); ok {
		add("revokedhostkeys", v)
	}
	if v, ok := o.keptString("xauthlocation", defXAuthLocation, false); ok {
		add("xauthlocation", v)
	}
	if o.knownHostsCommand != nil && !strings.EqualFold(o.knownHostsCommand.v, "none") {
		add("knownhostscommand", o.knownHostsCommand.v)
	}
	d.lines = append(d.lines, dumpForwards("dynamicforward", o.localFwds)...)
	d.lines = append(d.lines, dumpForwards("localforward", o.localFwds)...)
	d.lines = append(d.lines, dumpForwards("remoteforward", o.remoteFwds)...)
	for _, f := range d.identityFiles {
		add("identityfile", f)
	}
	add("canonicaldomains", oneLine(o.canonDomains))
	for _, f := range d.certFiles {
		add("certificatefile", f)
	}
	add("globalknownhostsfile", oneLine(d.globalKnownHosts))
	add("userknownhostsfile", oneLine(c.UserKnownHostsFiles))
	for _, e := range o.sendEnv {
		add("sendenv", e)
	}
	for _, e := range o.setEnv {
		add("setenv", e)
	}
	add("logverbose", o.dumpOneLine("logverbose", "none"))
	add("permitremoteopen", o.dumpOneLine("permitremoteopen", "any"))
	if o.addKeysLife <= 0 {
		add("addkeystoagent", fmtMulti(o.addKeys, multiAddKeys))
	} else if o.addKeys == 3 {
		add("addkeystoagent", "confirm "+strconv.Itoa(o.addKeysLife))
	} else {
		add("addkeystoagent", strconv.Itoa(o.addKeysLife))
	}
	if d.forwardAgentSock == nil {
		add("forwardagent", fmtFlag(o.forwardAgent))
	} else {
		add("forwardagent", *d.forwardAgentSock)
	}
	if o.connectTimeout == -1 {
		add("connecttimeout", "none")
	} else {
		add("connecttimeout", strconv.Itoa(o.connectTimeout))
	}
	add("tunneldevice", o.dumpTunnelDevice())
	// Sic: ssh -G spells this key with a capital P.
	add("canonicalizePermittedcnames", dumpCNAMEs(o.canonCNAMEs))
	add("controlpersist", o.dumpControlPersist())
	if o.escapeChar == escapeNone {
		add("escapechar", "none")
	} else {
		add("escapechar", vis(byte(o.escapeChar)))
	}
	add("ipqos", o.dumpIPQoS())
	add("rekeylimit", o.dumpRekeyLimit())
	add("streamlocalbindmask", o.dumpStreamLocalBindMask())
	add("syslogfacility", o.dumpNamed("syslogfacility", syslogFacilities, 1))
	if o.jumpHost == nil {
		if o.proxyCommand != nil {
			add("proxycommand", o.proxyCommand.v)
		}
	} else {
		add("proxyjump", c.ProxyJump)
	}
}

func oneLine(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, " ")
}

// vis encodes a byte as vis(3) with VIS_WHITE, which is how ssh -G shows
// the escape character.
func vis(c byte) string {
	if c == '\\' {
		return `\\`
	}
	if c > ' ' && c < 0x7f {
		return string([]byte{c})
	}
	if c&0x7f == ' ' {
		return fmt.Sprintf("\\%03o", c)
	}
	s := `\`
	if c&0x80 != 0 {
		c &= 0x7f
		s += "M"
	}
	if c < ' ' || c == 0x7f {
		if c == 0x7f {
			return s + "^?"
		}
		return s + "^" + string([]byte{c + '@'})
	}
	return s + "-" + string([]byte{c})
}

// Dump writes the configuration in the form and order of ssh -G, for the
// keywords rssh resolves (Keywords).
func (c *Config) Dump(w io.Writer) error {
	var b strings.Builder
	for _, l := range c.dump.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Keywords returns the keywords Dump prints, in ssh -G's order: every one
// OpenSSH 9.2's ssh -G prints (as Debian builds it), those printed only
// when set included, less NewerKeywords (printed only when set).
func Keywords() []string {
	return []string{
		"host", "user", "hostname", "port", "addressfamily", "batchmode",
		"canonicalizefallbacklocal", "canonicalizehostname", "checkhostip", "compression",
		"controlmaster", "enablesshkeysign", "clearallforwardings", "exitonforwardfailure",
		"fingerprinthash", "forwardx11", "forwardx11trusted", "gatewayports", "gssapiauthentication",
		"gssapikeyexchange", "gssapidelegatecredentials", "gssapitrustdns",
		"gssapirenewalforcesrekey", "gssapiclientidentity", "gssapiserveridentity",
		"gssapikexalgorithms", "hashknownhosts", "hostbasedauthentication", "identitiesonly",
		"kbdinteractiveauthentication", "nohostauthenticationforlocalhost", "passwordauthentication",
		"permitlocalcommand", "proxyusefdpass", "pubkeyauthentication", "requesttty", "sessiontype",
		"stdinnull", "forkafterauthentication", "streamlocalbindunlink", "stricthostkeychecking",
		"tcpkeepalive", "tunnel", "verifyhostkeydns", "visualhostkey", "updatehostkeys",
		"enableescapecommandline", "canonicalizemaxdots", "connectionattempts", "forwardx11timeout",
		"numberofpasswordprompts", "serveralivecountmax", "serveraliveinterval", "requiredrsasize",
		"bindaddress", "bindinterface", "ciphers", "controlpath", "hostkeyalgorithms",
		"hostkeyalias", "hostbasedacceptedalgorithms", "identityagent", "ignoreunknown",
		"kbdinteractivedevices", "kexalgorithms", "casignaturealgorithms", "localcommand",
		"remotecommand", "loglevel", "macs", "pkcs11provider", "securitykeyprovider",
		"preferredauthentications", "pubkeyacceptedalgorithms", "revokedhostkeys", "xauthlocation",
		"knownhostscommand", "dynamicforward", "localforward", "remoteforward", "identityfile",
		"canonicaldomains", "certificatefile", "globalknownhostsfile", "userknownhostsfile",
		"sendenv", "setenv", "logverbose", "permitremoteopen", "addkeystoagent", "forwardagent",
		"connecttimeout", "tunneldevice", "canonicalizePermittedcnames", "controlpersist",
		"escapechar", "ipqos", "rekeylimit", "streamlocalbindmask", "syslogfacility", "proxycommand",
		"proxyjump",
	}
}

// NewerKeywords returns the keywords Dump prints that OpenSSH 9.2's ssh -G
// does not know, because they come from a later release (WarnWeakCrypto,
// 10.1). Comparisons against the 9.2 ssh skip them.
func NewerKeywords() []string { return []string{"warnweakcrypto"} }
