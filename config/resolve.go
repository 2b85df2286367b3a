package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

const defaultSystemConfig = "/etc/ssh/ssh_config"

func userHome(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

// Resolve reads the configuration for req.Host the way ssh(1) 9.2 does:
// command-line options, then the user's and the system's file (or only
// -F's), a second "final" pass when a Match final or canonical block or
// CanonicalizeHostname asks for one, then OpenSSH's defaults and the
// per-keyword expansions. Errors are *Error values naming file and line.
func Resolve(req Request) (*Config, error) {
	if req.Host == "" {
		return nil, errorf(Pos{File: "command-line"}, "no destination host")
	}
	r := &resolver{o: newOptions(), host: req.Host, origHost: req.Host, hasCommand: req.HasCommand, stdioForward: req.StdioForward}
	if err := r.environment(req); err != nil {
		return nil, err
	}
	o := r.o
	for _, line := range req.Options {
		if err := r.processLine(line, Pos{File: "command-line"}, nil, true, false, 0); err != nil {
			return nil, err
		}
	}
	if err := r.configFiles(req); err != nil {
		return nil, err
	}

	// fill_default_options_for_canonicalization
	if o.canonMaxDots == -1 {
		o.canonMaxDots = 1
	}
	if o.canonFallback == -1 {
		o.canonFallback = 1
	}
	if o.canonHostname == -1 {
		o.canonHostname = 0
	}

	host := r.host
	if o.hostname != nil {
		h, err := percentExpand(o.hostname.v, tokens{'h': host}, false)
		if err != nil {
			return nil, errorf(o.hostname.pos, "hostname: %v", err)
		}
		host = h
		o.hostname = &sval{h, o.hostname.pos}
	}
	wasAddr := isAddr(host, o.addressFamily)
	if !wasAddr {
		host = asciiLower(host)
	}
	if o.canonHostname != 0 || wasAddr {
		h, err := r.canonicalize(host)
		if err != nil {
			return nil, err
		}
		host = h
	}
	if o.canonHostname != 0 && hasPermittedCNAMEs(o.canonCNAMEs) && (r.direct() || o.canonHostname == 2) {
		return nil, errorf(o.canonHostPos, "canonicalizehostname with canonicalizepermittedcnames is not supported by rssh (it needs DNS lookups)")
	}
	if o.canonHostname != 0 {
		r.wantFinal = true
	}
	if r.wantFinal {
		o.hostname = &sval{host, Pos{}}
		r.host = host
		r.finalPass = true
		if err := r.configFiles(req); err != nil {
			return nil, err
		}
	}
	return r.finish(host)
}

// environment fills in what the %-tokens and Match see.
func (r *resolver) environment(req Request) error {
	r.home, r.localUser, r.envHome = req.Home, req.LocalUser, req.EnvHome
	if r.home == "" || r.localUser == "" {
		u, err := user.Current()
		if err != nil {
			return errorf(Pos{}, "cannot look up the local user: %v", err)
		}
		if r.home == "" {
			r.home = u.HomeDir
		}
		if r.localUser == "" {
			r.localUser = u.Username
		}
	}
	if r.envHome == "" {
		r.envHome = os.Getenv("HOME")
	}
	if r.envHome == "" {
		r.envHome = r.home
	}
	r.uid = strconv.Itoa(os.Getuid())
	r.thisHost, _ = os.Hostname()
	return nil
}

// configFiles is process_config_files: -F's file only, or the user's file
// then the system's.
func (r *resolver) configFiles(req Request) error {
	switch {
	case req.ConfigFile != "" && strings.EqualFold(req.ConfigFile, "none"):
		return nil
	case req.ConfigFile != "":
		active := true
		found, err := r.readFile(req.ConfigFile, true, false, false, &active, 0)
		if !found && err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return err
			}
			return errorf(Pos{File: req.ConfigFile}, "can't open config file: %v", unwrapPathErr(err))
		}
		return err
	}
	active := true
	userFile := strings.TrimSuffix(r.home, "/") + "/.ssh/config"
	if _, err := r.readFile(userFile, true, true, false, &active, 0); err != nil && !missing(err) {
		return err
	}
	sys := req.SystemConfig
	if sys == "" {
		sys = defaultSystemConfig
	}
	active = true
	if _, err := r.readFile(sys, false, false, false, &active, 0); err != nil && !missing(err) {
		return err
	}
	return nil
}

// missing reports an error OpenSSH ignores for the default files: any
// failure to open them.
func missing(err error) bool {
	var ce *Error
	if errors.As(err, &ce) {
		return false
	}
	var pe *fs.PathError
	return errors.As(err, &pe)
}

func (r *resolver) direct() bool {
	o := r.o
	return (o.proxyCommand == nil || strings.EqualFold(o.proxyCommand.v, "none")) && o.jumpHost == nil
}

func hasPermittedCNAMEs(list []string) bool {
	if len(list) == 1 && strings.EqualFold(list[0], "none") {
		return false
	}
	return len(list) > 0
}

// canonicalize is resolve_canonicalize without DNS: numeric addresses are
// rewritten to their canonical form; a name is left alone when OpenSSH
// would leave it alone, and anything that would need a DNS lookup is an
// error naming the CanonicalizeHostname line.
func (r *resolver) canonicalize(host string) (string, error) {
	o := r.o
	if a, ok := numericAddr(host, o.addressFamily); ok {
		if !strings.EqualFold(a, host) {
			return a, nil
		}
		return host, nil
	}
	if isAddrFast(host) || o.canonHostname == 0 {
		return host, nil
	}
	if !r.direct() && o.canonHostname != 2 {
		return host, nil
	}
	unsupported := errorf(o.canonHostPos, "canonicalizehostname %s is not supported by rssh for %q (it needs DNS lookups)",
		fmtMulti(o.canonHostname, multiCanon), host)
	if strings.HasSuffix(host, ".") {
		return "", unsupported
	}
	if strings.Count(host, ".") > o.canonMaxDots {
		return host, nil
	}
	for _, d := range o.canonDomains {
		if strings.EqualFold(d, "none") {
			break
		}
		return "", unsupported
	}
	if o.canonFallback == 0 {
		return "", errorf(o.canonHostPos, "could not resolve host %q", host)
	}
	return host, nil
}

// finish is what ssh.c does between the last pass and printing -G:
// defaults, the ProxyJump loop check, and the per-keyword expansions.
func (r *resolver) finish(host string) (*Config, error) {
	o := r.o
	c := &Config{Host: r.origHost, Hostname: host, Origins: r.origins}
	// Which algorithm lists the user set, before defaults fill the rest:
	// rssh keeps x/crypto's own (faster, equally strong) preferences
	// unless told otherwise.
	c.set = map[string]bool{
		"ciphers":                  o.ciphers != nil,
		"macs":                     o.macs != nil,
		"kexalgorithms":            o.kex != nil,
		"hostkeyalgorithms":        o.hostKeyAlgs != nil,
		"pubkeyacceptedalgorithms": o.pubkeyAlgs != nil,
	}
	c.OrderHostKeyAlgorithms = o.hostKeyAlgs == nil || strings.HasPrefix(o.hostKeyAlgs.v, "+") || strings.HasPrefix(o.hostKeyAlgs.v, "-")
	if o.knownHostsCommand != nil && !strings.EqualFold(o.knownHostsCommand.v, "none") {
		c.KnownHostsCommand = o.knownHostsCommand.v
	}
	c.dump.warnWeakSet = o.warnWeakCrypto != -1
	if r.stdioForward {
		// -W changes these defaults only: a config or -o may still set them.
		if o.exitOnFwdFailure == -1 {
			o.exitOnFwdFailure = 1
		}
		if o.clearForwardings == -1 {
			o.clearForwardings = 1
		}
	}
	if err := fillDefaults(o); err != nil {
		return nil, err
	}
	o.tidyUpdateHostKeys(r.hasCommand)
	userName := r.localUser
	if o.user != nil {
		userName = o.user.v
	}
	if o.jumpHost != nil {
		port, jport := o.port, o.jumpPort
		if port <= 0 {
			port = 22
		}
		if jport <= 0 {
			jport = 22
		}
		juser := userName
		if o.jumpUser != nil {
			juser = *o.jumpUser
		}
		if *o.jumpHost == host && port == jport && userName == juser {
			return nil, errorf(o.jumpPos, "jumphost loop via %s", *o.jumpHost)
		}
	}
	if o.port == 0 {
		o.port = 22
	}
	if o.hostKeyAlias != nil {
		o.hostKeyAlias.v = asciiLower(o.hostKeyAlias.v)
	}
	if o.connAttempts <= 0 {
		return nil, errorf(Pos{}, "invalid number of connectionattempts")
	}
	portStr := strconv.Itoa(o.port)
	keyAlias := r.origHost
	if o.hostKeyAlias != nil {
		keyAlias = o.hostKeyAlias.v
	}
	toks := tokens{
		'C': connHash(r.thisHost, host, portStr, userName),
		'L': shortHost(r.thisHost),
		'i': r.uid,
		'k': keyAlias,
		'l': r.thisHost,
		'n': r.origHost,
		'p': portStr,
		'd': r.home,
		'h': host,
		'r': userName,
		'u': r.localUser,
	}
	c.toks = toks
	pathExpand := func(s string, pos Pos, what string) (string, error) {
		t, err := tildeExpand(s, r.home)
		if err != nil {
			return "", errorf(pos, "%s: %v", what, err)
		}
		v, err := percentExpand(t, toks, true)
		if err != nil {
			return "", errorf(pos, "%s: %v", what, err)
		}
		return v, nil
	}

	c.User = userName
	c.Port = o.port
	c.dump.remoteCommand = ""
	if o.remoteCommand != nil {
		v, err := percentExpand(o.remoteCommand.v, toks, false)
		if err != nil {
			return nil, errorf(o.remoteCommand.pos, "remotecommand: %v", err)
		}
		c.RemoteCommand = v
		c.dump.remoteCommand = v
		c.dump.hasRemoteCommand = true
	}
	if cp, ok := o.keptString("controlpath", "", true); ok {
		v, err := pathExpand(cp, Pos{}, "controlpath")
		if err != nil {
			return nil, err
		}
		c.dump.controlPath = v
	}
	if o.identityAgent != nil {
		v, err := pathExpand(o.identityAgent.v, o.identityAgent.pos, "identityagent")
		if err != nil {
			return nil, err
		}
		c.IdentityAgent = v
	}
	c.ForwardAgent = fmtFlag(o.forwardAgent)
	if o.forwardAgentSock != nil {
		v, err := pathExpand(o.forwardAgentSock.v, o.forwardAgentSock.pos, "forwardagent")
		if err != nil {
			return nil, err
		}
		c.dump.forwardAgentSock = &v
		if o.forwardAgent == 1 {
			c.ForwardAgent = v
		}
	}
	if len(o.systemHosts) > 0 && strings.EqualFold(o.systemHosts[0], "none") {
		o.systemHosts = nil
	}
	if len(o.userHosts) > 0 && strings.EqualFold(o.userHosts[0], "none") {
		o.userHosts = nil
	}
	for _, f := range o.userHosts {
		v, err := pathExpand(f, o.userHostsPos, "userknownhostsfile")
		if err != nil {
			return nil, err
		}
		c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, v)
	}
	for _, f := range o.systemHosts {
		v, err := tildeExpand(f, r.home)
		if err != nil {
			return nil, errorf(Pos{}, "globalknownhostsfile: %v", err)
		}
		c.GlobalKnownHostsFiles = append(c.GlobalKnownHostsFiles, v)
	}
	c.dump.globalKnownHosts = append([]string(nil), o.systemHosts...)
	for _, list := range []*[]forward{&o.localFwds, &o.remoteFwds} {
		for i := range *list {
			f := &(*list)[i]
			for _, p := range []*string{&f.listenPath, &f.connectPath} {
				if *p == "" {
					continue
				}
				v, err := percentExpand(*p, toks, false)
				if err != nil {
					return nil, errorf(Pos{}, "forward path: %v", err)
				}
				*p = v
			}
		}
	}
	for _, f := range o.identityFiles {
		v, err := pathExpand(f.path, f.pos, "identityfile")
		if err != nil {
			return nil, err
		}
		c.IdentityFiles = append(c.IdentityFiles, v)
		c.dump.identityFiles = append(c.dump.identityFiles, f.path)
	}
	for _, f := range o.certFiles {
		v, err := pathExpand(f.path, f.pos, "certificatefile")
		if err != nil {
			return nil, err
		}
		c.CertificateFiles = append(c.CertificateFiles, v)
		c.dump.certFiles = append(c.dump.certFiles, f.path)
	}
	// RevokedHostKeys: the value -G prints ("none" clears it), expanded.
	if v, ok := o.keptString("revokedhostkeys", "", true); ok {
		v, err := pathExpand(v, Pos{}, "revokedhostkeys")
		if err != nil {
			return nil, err
		}
		c.RevokedHostKeys = v
	}
	if o.proxyCommand != nil {
		// Checked now so a bad token is reported with its line rather
		// than when the command is about to run.
		if _, err := percentExpand(o.proxyCommand.v, tokens{'h': host, 'k': keyAlias, 'n': r.origHost, 'p': portStr, 'r': userName}, false); err != nil {
			return nil, errorf(o.proxyCommand.pos, "proxycommand: %v", err)
		}
		c.ProxyCommand = o.proxyCommand.v
	}
	if o.jumpHost != nil {
		c.ProxyJump = formatJump(o)
	}
	c.fill(o)
	c.renderDump(o)
	c.keyAlias = keyAlias
	return c, nil
}

// fillDefaults is fill_default_options for the options rssh resolves.
func fillDefaults(o *options) error {
	def := func(p *int, v int) {
		if *p == -1 {
			*p = v
		}
	}
	def(&o.forwardAgent, 0)
	def(&o.exitOnFwdFailure, 0)
	def(&o.forkAfterAuth, 0)
	def(&o.clearForwardings, 0)
	def(&o.gatewayPorts, 0)
	if o.clearForwardings == 1 {
		o.localFwds, o.remoteFwds = nil, nil
	}
	def(&o.pubkeyAuth, pubkeyAll)
	def(&o.passwordAuth, 1)
	def(&o.kbdInteractive, 1)
	def(&o.batchMode, 0)
	def(&o.hashKnownHosts, 0)
	def(&o.strictHostKey, strictAsk)
	def(&o.compression, 0)
	def(&o.tcpKeepAlive, 1)
	def(&o.port, 0)
	def(&o.addressFamily, afAny)
	def(&o.connAttempts, 1)
	def(&o.numPassPrompts, 3)
	if o.addKeys == -1 {
		o.addKeys, o.addKeysLife = 0, 0
	}
	if len(o.identityFiles) == 0 {
		for _, f := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"} {
			addFile(&o.identityFiles, "~/.ssh/"+f, false, Pos{})
		}
	}
	def(&o.escapeChar, '~')
	if len(o.systemHosts) == 0 {
		o.systemHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	if o.keptArg("updatehostkeys") == "" {
		if o.kept == nil {
			o.kept = map[string][]string{}
		}
		o.kept["updatehostkeys"] = []string{fmtFlag(o.defaultUpdateHostKeys())}
	}
	if len(o.userHosts) == 0 {
		o.userHosts = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	}
	def(&o.logLevel, 3)
	def(&o.identitiesOnly, 0)
	def(&o.aliveInterval, 0)
	def(&o.aliveCountMax, 3)
	def(&o.requestTTY, ttyAuto)
	def(&o.sessionType, sessionDefault)
	def(&o.stdinNull, 0)
	def(&o.escapeCmdline, 0)
	def(&o.warnWeakCrypto, 1)
	for _, a := range []struct {
		p        **sval
		def, all string
		name     string
	}{
		{&o.ciphers, defCiphers, allCiphers, "ciphers"},
		{&o.macs, defMACs, allMACs, "macs"},
		{&o.kex, defKex, allKex, "kexalgorithms"},
		{&o.pubkeyAlgs, defKeys, allKeys, "pubkeyacceptedalgorithms"},
		{&o.hostKeyAlgs, defKeys, allKeys, "hostkeyalgorithms"},
	} {
		in, pos := "", Pos{}
		if *a.p != nil {
			in, pos = (*a.p).v, (*a.p).pos
		}
		v, ok := kexAssemble(in, a.def, a.all)
		if !ok {
			return errorf(pos, "%s: invalid algorithm list %q", a.name, in)
		}
		*a.p = &sval{v, pos}
	}
	if o.remoteCommand != nil && strings.EqualFold(o.remoteCommand.v, "none") {
		o.remoteCommand = nil
	}
	if o.proxyCommand != nil && strings.EqualFold(o.proxyCommand.v, "none") {
		o.proxyCommand = nil
	}
	if o.jumpHost != nil && *o.jumpHost == "none" && o.jumpPort == 0 && o.jumpUser == nil {
		o.jumpHost = nil
	}
	return nil
}

// fill sets the typed fields from the resolved options (renderDump, in
// dump.go, renders the -G lines from the same).
func (c *Config) fill(o *options) {
	c.IdentitiesOnly = o.identitiesOnly == 1
	c.AddKeysToAgent = [...]string{"no", "yes", "ask", "confirm"}[o.addKeys]
	c.AddKeysToAgentLifetime = time.Duration(o.addKeysLife) * time.Second
	c.StrictHostKeyChecking = map[int]string{strictOff: "no", strictNew: "accept-new", strictYes: "yes", strictAsk: "ask"}[o.strictHostKey]
	if o.hostKeyAlias != nil {
		c.HostKeyAlias = o.hostKeyAlias.v
	}
	c.HostKeyAlgorithms = strings.Split(o.hostKeyAlgs.v, ",")
	c.KexAlgorithms = strings.Split(o.kex.v, ",")
	c.Ciphers = strings.Split(o.ciphers.v, ",")
	c.MACs = strings.Split(o.macs.v, ",")
	c.PubkeyAcceptedAlgorithms = strings.Split(o.pubkeyAlgs.v, ",")
	c.PubkeyAuthentication = o.pubkeyAuth != pubkeyNo
	c.PasswordAuthentication = o.passwordAuth == 1
	c.KbdInteractiveAuthentication = o.kbdInteractive == 1
	c.NumberOfPasswordPrompts = o.numPassPrompts
	if o.connectTimeout > 0 {
		c.ConnectTimeout = time.Duration(o.connectTimeout) * time.Second
	}
	c.ConnectionAttempts = o.connAttempts
	c.BatchMode = o.batchMode == 1
	c.HashKnownHosts = o.hashKnownHosts == 1
	c.UpdateHostKeys = o.updateHostKeys()
	c.RequireEnv = o.requireEnv == 1
	c.ForwardSecrets = o.forwardSecrets == 1
	c.SecretConfirm = o.secretConfirm == 1
	c.TokenTransport = "env"
	if o.tokenTransport != nil {
		c.TokenTransport = o.tokenTransport.v
	}
	if o.tokenTTL > 0 {
		c.TokenTTL = time.Duration(o.tokenTTL) * time.Second
	}
	c.AddressFamily = fmtMulti(o.addressFamily, multiAF)
	if o.bindAddress != nil {
		c.BindAddress = o.bindAddress.v
	}
	if o.bindInterface != nil {
		c.BindInterface = o.bindInterface.v
	}
	c.TCPKeepAlive = o.tcpKeepAlive == 1
	c.Compression = o.compression == 1
	for _, e := range o.setEnv {
		c.SetEnv = append(c.SetEnv, e)
	}
	c.SetEnvPos = o.setEnvPos
	c.SendEnv = append([]string(nil), o.sendEnv...)
	c.LocalForwards = specs(dumpForwards("localforward", o.localFwds))
	c.RemoteForwards = specs(dumpForwards("remoteforward", o.remoteFwds))
	c.DynamicForwards = specs(dumpForwards("dynamicforward", o.localFwds))
	c.ClearAllForwardings = o.clearForwardings == 1
	c.ExitOnForwardFailure = o.exitOnFwdFailure == 1
	c.GatewayPorts = o.gatewayPorts == 1
	c.PermitRemoteOpen = append([]string(nil), o.kept["permitremoteopen"]...)
	c.RequestTTY = map[int]string{ttyNo: "no", ttyYes: "yes", ttyAuto: "auto", ttyForce: "force"}[o.requestTTY]
	c.SessionType = fmtMulti(o.sessionType, multiSession)
	c.StdinNull = o.stdinNull == 1
	c.ForkAfterAuthentication = o.forkAfterAuth == 1
	c.EnableEscapeCommandline = o.escapeCmdline == 1
	c.PermitLocalCommand = o.keptFlag("permitlocalcommand", 0) == "yes"
	c.LocalCommand, _ = o.keptString("localcommand", "", true)
	// RekeyLimit as -G prints it: "BYTES SECONDS".
	if f := strings.Fields(o.dumpRekeyLimit()); len(f) == 2 {
		c.RekeyLimit, _ = strconv.ParseUint(f[0], 10, 64)
		secs, _ := strconv.Atoi(f[1])
		c.RekeyInterval = time.Duration(secs) * time.Second
	}
	c.WarnWeakCrypto = o.warnWeakCrypto == 1
	switch o.escapeChar {
	case escapeNone:
		c.EscapeChar = "none"
	default:
		c.EscapeChar = string([]byte{byte(o.escapeChar)})
	}
	c.ServerAliveInterval = time.Duration(o.aliveInterval) * time.Second
	c.ServerAliveCountMax = o.aliveCountMax
	c.LogLevel = fmtMulti(o.logLevel, logLevels)
	switch c.LogLevel {
	case "SILENT":
		c.LogLevel = "QUIET"
	case "DEBUG":
		c.LogLevel = "DEBUG1"
	}
}

func specs(lines []string) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l[strings.IndexByte(l, ' ')+1:])
	}
	return out
}

// ExpandProxyCommand returns ProxyCommand with %h %k %n %p %r and %%
// expanded as OpenSSH expands it before running it with
// $SHELL -c "exec <command>". It is "" when there is no ProxyCommand.
func (c *Config) ExpandProxyCommand() string {
	if c.ProxyCommand == "" {
		return ""
	}
	v, err := percentExpand(c.ProxyCommand, tokens{
		'h': c.Hostname, 'k': c.keyAlias, 'n': c.Host, 'p': strconv.Itoa(c.Port), 'r': c.User,
	}, false)
	if err != nil {
		return "" // Resolve has already rejected bad tokens
	}
	return v
}

// ExpandKnownHostsCommandArg expands one argument of KnownHostsCommand as
// OpenSSH's load_hostkeys_command does: the client tokens (%C %L %i %k %l
// %n %p %d %h %r %u), ${VAR}, and extra, which holds %H, %I, %t, %f and %K.
func (c *Config) ExpandKnownHostsCommandArg(arg string, extra map[byte]string) (string, error) {
	toks := tokens{}
	for k, v := range c.toks {
		toks[k] = v
	}
	for k, v := range extra {
		toks[k] = v
	}
	return percentExpand(arg, toks, true)
}

// ExpandLocalCommand returns LocalCommand with the tokens ssh expands in it
// (%C %L %i %k %l %n %p %d %h %r %u, %T as "NONE": rssh has no tunnels,
// and %%), or an error naming the bad token. It is "" when there is none.
func (c *Config) ExpandLocalCommand() (string, error) {
	if c.LocalCommand == "" {
		return "", nil
	}
	toks := tokens{'T': "NONE"}
	for k, v := range c.toks {
		toks[k] = v
	}
	v, err := percentExpand(c.LocalCommand, toks, false)
	if err != nil {
		return "", fmt.Errorf("localcommand: %v", err)
	}
	return v, nil
}
