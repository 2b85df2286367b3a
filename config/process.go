package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Bounds. OpenSSH reads lines of any length with getline(3); rssh caps
// what it will read so a hostile or corrupt file cannot make it allocate
// without limit. Real configs are far below these.
const (
	maxFileSize     = 4 << 20
	maxLineLen      = 64 << 10
	maxIncludeDepth = 16 // READCONF_MAX_DEPTH
	maxIncludeFiles = 4096
	maxGlobEntries  = 1 << 16
)

// resolver holds one resolution: the options being filled and what the
// %-tokens and Match criteria see.
type resolver struct {
	o         *options
	host      string // OpenSSH's global "host": the host as given, or after the first pass the expanded hostname
	origHost  string // the host as given (%n, Match originalhost)
	finalPass bool
	wantFinal bool
	// hasCommand: a remote command was given on the command line.
	hasCommand bool
	// stdioForward: -W was given.
	stdioForward bool

	home      string // passwd home: ~ and %d
	envHome   string // $HOME: ~ in Include globs
	localUser string
	uid       string
	thisHost  string

	includes int // files opened through Include, bounded

	// origins is where each keyword's first applicable line is: the one
	// that wins for a single value, the first of a list (rssh doctor).
	origins map[string]Pos
}

// readFile reads one configuration file as read_config_file_depth. found is
// false when the file does not exist (or cannot be opened), which callers
// treat as OpenSSH does.
func (r *resolver) readFile(path string, userConf, checkPerm, neverMatch bool, active *bool, depth int) (bool, error) {
	if depth < 0 || depth > maxIncludeDepth {
		return false, fatalf(Pos{File: path}, "too many recursive configuration includes")
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, errorf(Pos{File: path}, "%v", err)
	}
	if checkPerm {
		if err := checkOwnerPerm(path, st); err != nil {
			return false, err
		}
	}
	if depth > 0 && !st.IsDir() && !st.Mode().IsRegular() {
		// An included FIFO or device could block or never end; -F
		// <(command) at the top level still works.
		return false, fatalf(Pos{File: path}, "included file is not a regular file")
	}
	if st.IsDir() {
		// fopen(3) opens a directory and getline(3) then fails at once:
		// OpenSSH reads it as an empty file.
		return true, nil
	}
	if st.Size() > maxFileSize {
		return false, errorf(Pos{File: path}, "file larger than %d bytes", maxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return false, errorf(Pos{File: path}, "%v", err)
	}
	if len(data) > maxFileSize {
		return false, errorf(Pos{File: path}, "file larger than %d bytes", maxFileSize)
	}
	lineNum := 0
	var bad []*Error
	for len(data) > 0 {
		lineNum++
		var line string
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			line = string(data[:i+1])
			data = data[i+1:]
		} else {
			line = string(data)
			data = nil
		}
		pos := Pos{File: path, Line: lineNum}
		if len(line) > maxLineLen {
			return true, fatalf(pos, "line longer than %d bytes", maxLineLen)
		}
		// getline(3) keeps NUL bytes but the C string ends at the first.
		if i := strings.IndexByte(line, 0); i >= 0 {
			line = line[:i]
		}
		if err := r.processLine(line, pos, active, userConf, neverMatch, depth); err != nil {
			// As ssh: a bad line is reported and counted, and reading
			// goes on; an included file's bad lines and fatal errors
			// end it at once.
			var ce *Error
			var bo *BadOptions
			switch {
			case errors.As(err, &bo):
				bo.Errs = append(bad, bo.Errs...)
				return true, bo
			case !errors.As(err, &ce):
				return true, err
			case ce.fatal && len(bad) > 0:
				return true, &BadOptions{Errs: append(bad, ce)}
			case ce.fatal:
				return true, err
			}
			bad = append(bad, ce)
		}
	}
	if len(bad) > 0 {
		return true, &BadOptions{Errs: bad, File: path, N: len(bad)}
	}
	return true, nil
}

// CheckLine checks one command-line option ("Keyword value", as -o takes
// it) the way ssh does while it reads argv, resolving nothing.
func CheckLine(line string) error {
	r := &resolver{o: newOptions()}
	return r.processLine(line, Pos{File: "command-line"}, nil, true, false, 0)
}

// processLine is process_config_line_depth. active is nil for a
// command-line option.
func (r *resolver) processLine(line string, pos Pos, active *bool, userConf, neverMatch bool, depth int) error {
	cmdline := active == nil
	if cmdline {
		t := true
		active = &t
	}
	o := r.o
	keyword, str, blank, hasRest, _ := splitLine(line)
	if blank {
		return nil
	}
	if !hasRest {
		return errorf(pos, "no argument after keyword %q", keyword)
	}
	k, known := keywords[keyword]
	if !known {
		if o.ignoredUnknown != nil && matchPatternList(keyword, o.ignoredUnknown.v, true) == 1 {
			if _, ok := argvSplit(str); !ok {
				return errorf(pos, "invalid quotes")
			}
			return nil
		}
		return errorf(pos, "bad configuration option: %s", keyword)
	}
	av, ok := argvSplit(str)
	if !ok {
		return errorf(pos, "invalid quotes")
	}
	next := func() (string, bool) {
		if len(av) == 0 {
			return "", false
		}
		a := av[0]
		av = av[1:]
		return a, true
	}
	consume := func() { av = nil }
	act := *active
	if c, ok := canonical[keyword]; ok {
		keyword = c
	}
	if act && keyword != "host" && keyword != "match" && keyword != "include" {
		if r.origins == nil {
			r.origins = map[string]Pos{}
		}
		if _, seen := r.origins[keyword]; !seen {
			r.origins[keyword] = pos
		}
	}

	setInt := func(p *int, v int) {
		if act && *p == -1 {
			*p = v
		}
	}
	setStr := func(p **sval, v string) {
		if act && *p == nil {
			*p = &sval{v, pos}
		}
	}
	parseMultiTo := func(p *int, m []multi) error {
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		v, ok := parseMulti(arg, m)
		if !ok {
			return errorf(pos, "unsupported option %q", arg)
		}
		setInt(p, v)
		return nil
	}
	parseTimeTo := func(p *int) error {
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing time value")
		}
		v := -1
		if arg != "none" {
			if v = convtime(arg); v == -1 {
				return errorf(pos, "invalid time value")
			}
		}
		setInt(p, v)
		return nil
	}
	parseIntTo := func(p *int) error {
		arg, has := next()
		if !has || arg == "" {
			return errorf(pos, "integer value missing")
		}
		n, e := strtonum(arg, 0, 1<<31-1)
		if e != "" {
			return errorf(pos, "integer value %s", e)
		}
		setInt(p, int(n))
		return nil
	}
	parseStringTo := func(p **sval) error {
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		setStr(p, arg)
		return nil
	}
	parseAlgsTo := func(p **sval, valid func(string) bool, what string) error {
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		if arg[0] != '-' {
			n := arg
			if n[0] == '+' || n[0] == '^' {
				n = n[1:]
			}
			if !valid(n) {
				return errorf(pos, "bad %s '%s'", what, arg)
			}
		}
		setStr(p, arg)
		return nil
	}

	var err error
	switch keyword {
	case "host":
		if cmdline {
			return errorf(pos, "host directive not supported as a command-line option")
		}
		*active = false
		for len(av) > 0 {
			arg, _ := next()
			if arg == "" {
				return errorf(pos, "keyword host empty argument")
			}
			if neverMatch {
				consume()
				break
			}
			negated := arg[0] == '!'
			if negated {
				arg = arg[1:]
			}
			if matchPattern(r.host, arg) {
				if negated {
					*active = false
					consume()
					break
				}
				*active = true
			}
		}
	case "match":
		if cmdline {
			return errorf(pos, "match directive not supported as a command-line option")
		}
		v, rest, err := r.matchLine(str, pos)
		if err != nil {
			return err
		}
		*active = v && !neverMatch
		if rest == "" {
			consume()
		} else {
			// Arguments the criteria did not use fail the extra
			// arguments check below, as in OpenSSH.
			av, _ = argvSplit(rest)
		}
	case "include":
		if cmdline {
			return errorf(pos, "include directive not supported as a command-line option")
		}
		for len(av) > 0 {
			arg, _ := next()
			if err := r.include(arg, pos, userConf, active, depth); err != nil {
				return err
			}
		}
	case "forwardagent":
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		if v, ok := parseMulti(arg, multiFlag); ok {
			setInt(&o.forwardAgent, v)
			break
		}
		setInt(&o.forwardAgent, 1)
		if err := checkAgentPath(arg, pos); err != nil {
			return err
		}
		setStr(&o.forwardAgentSock, arg)
	case "identityagent":
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		if err := checkAgentPath(arg, pos); err != nil {
			return err
		}
		setStr(&o.identityAgent, arg)
	case "exitonforwardfailure":
		err = parseMultiTo(&o.exitOnFwdFailure, multiFlag)
	case "forkafterauthentication":
		err = parseMultiTo(&o.forkAfterAuth, multiFlag)
	case "gatewayports":
		err = parseMultiTo(&o.gatewayPorts, multiFlag)
	case "clearallforwardings":
		err = parseMultiTo(&o.clearForwardings, multiFlag)
	case "passwordauthentication":
		err = parseMultiTo(&o.passwordAuth, multiFlag)
	case "kbdinteractiveauthentication":
		err = parseMultiTo(&o.kbdInteractive, multiFlag)
	case "pubkeyauthentication":
		err = parseMultiTo(&o.pubkeyAuth, multiPubkey)
	case "batchmode":
		err = parseMultiTo(&o.batchMode, multiFlag)
	case "hashknownhosts":
		err = parseMultiTo(&o.hashKnownHosts, multiFlag)
	case "rsshrequireenv":
		err = parseMultiTo(&o.requireEnv, multiFlag)
	case "rsshtokenttl":
		err = parseTimeTo(&o.tokenTTL)
	case "rsshtokentransport":
		arg, _ := next()
		if arg != "env" && arg != "lc" {
			return errorf(pos, "bad RsshTokenTransport %q: want env or lc", arg)
		}
		setStr(&o.tokenTransport, arg)
	case "stricthostkeychecking":
		err = parseMultiTo(&o.strictHostKey, multiStrict)
	case "compression":
		err = parseMultiTo(&o.compression, multiCompression)
	case "tcpkeepalive":
		err = parseMultiTo(&o.tcpKeepAlive, multiFlag)
	case "identitiesonly":
		err = parseMultiTo(&o.identitiesOnly, multiFlag)
	case "addressfamily":
		err = parseMultiTo(&o.addressFamily, multiAF)
	case "requesttty":
		err = parseMultiTo(&o.requestTTY, multiTTY)
	case "sessiontype":
		err = parseMultiTo(&o.sessionType, multiSession)
	case "stdinnull":
		err = parseMultiTo(&o.stdinNull, multiFlag)
	case "enableescapecommandline":
		err = parseMultiTo(&o.escapeCmdline, multiFlag)
	case "warnweakcrypto":
		err = parseMultiTo(&o.warnWeakCrypto, multiWarnWeak)
	case "canonicalizehostname":
		before := o.canonHostname
		err = parseMultiTo(&o.canonHostname, multiCanon)
		if before == -1 && o.canonHostname != -1 {
			o.canonHostPos = pos
		}
	case "canonicalizefallbacklocal":
		err = parseMultiTo(&o.canonFallback, multiFlag)
	case "canonicalizemaxdots":
		err = parseIntTo(&o.canonMaxDots)
	case "canonicaldomains":
		had := len(o.canonDomains) != 0
		for i := 0; len(av) > 0; i++ {
			arg, _ := next()
			if arg == "" {
				return errorf(pos, "keyword canonicaldomains empty argument")
			}
			if strings.EqualFold(arg, "none") && (i > 0 || len(av) > 0) {
				return errorf(pos, "keyword canonicaldomains \"none\" argument must appear alone")
			}
			if !act || had {
				continue
			}
			if len(o.canonDomains) >= maxCanonDomains {
				return errorf(pos, "too many hostname suffixes")
			}
			o.canonDomains = append(o.canonDomains, arg)
			o.canonDomainPos = pos
		}
	case "canonicalizepermittedcnames":
		had := len(o.canonCNAMEs) != 0
		for i := 0; len(av) > 0; i++ {
			arg, _ := next()
			if strings.EqualFold(arg, "none") {
				if i > 0 || len(av) > 0 {
					return errorf(pos, "keyword canonicalizepermittedcnames \"none\" argument must appear alone")
				}
			} else if arg != "*" {
				c := strings.IndexByte(arg, ':')
				if c < 0 || c == len(arg)-1 {
					return errorf(pos, "invalid permitted CNAME \"%s\"", arg)
				}
			}
			if act && !had {
				if len(o.canonCNAMEs) >= maxCanonDomains {
					return errorf(pos, "too many permitted cnames")
				}
				o.canonCNAMEs = append(o.canonCNAMEs, arg)
			}
		}
	case "connecttimeout":
		err = parseTimeTo(&o.connectTimeout)
	case "serveraliveinterval":
		err = parseTimeTo(&o.aliveInterval)
	case "serveralivecountmax":
		err = parseIntTo(&o.aliveCountMax)
	case "connectionattempts":
		err = parseIntTo(&o.connAttempts)
	case "numberofpasswordprompts":
		err = parseIntTo(&o.numPassPrompts)
	case "port":
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		v := a2port(arg)
		if v <= 0 {
			return errorf(pos, "bad port '%s'", arg)
		}
		setInt(&o.port, v)
	case "user":
		err = parseStringTo(&o.user)
	case "hostname":
		err = parseStringTo(&o.hostname)
	case "hostkeyalias":
		err = parseStringTo(&o.hostKeyAlias)
	case "bindaddress":
		err = parseStringTo(&o.bindAddress)
	case "bindinterface":
		err = parseStringTo(&o.bindInterface)
	case "ignoreunknown":
		err = parseStringTo(&o.ignoredUnknown)
	case "loglevel":
		arg, _ := next()
		v, ok := parseMulti(arg, logLevels)
		if !ok {
			return errorf(pos, "unsupported log level '%s'", arg)
		}
		setInt(&o.logLevel, v)
	case "escapechar":
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		var v int
		switch {
		case arg == "none":
			v = escapeNone
		case len(arg) == 1:
			v = int(arg[0])
		case arg[0] == '^' && len(arg) == 2 && arg[1] >= 64 && arg[1] < 128:
			v = int(arg[1]) & 31
		default:
			return errorf(pos, "bad escape character")
		}
		setInt(&o.escapeChar, v)
	case "addkeystoagent":
		arg, _ := next()
		arg2, has2 := next()
		v, ok := parseMulti(arg, multiAddKeys)
		if arg == "" {
			ok = false
		}
		life := 0
		switch {
		case ok && v == 3 && has2:
			if life = convtime(arg2); life == -1 {
				return errorf(pos, "invalid time value")
			}
		case !ok && !has2:
			if life = convtime(arg); life == -1 {
				return errorf(pos, "unsupported option")
			}
			v = 1
		case !ok || has2:
			return errorf(pos, "unsupported option")
		}
		if act && o.addKeys == -1 {
			o.addKeys = v
			o.addKeysLife = life
		}
	case "identityfile", "certificatefile":
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		if !act {
			break
		}
		list := &o.identityFiles
		limit := maxIdentityFiles
		if keyword == "certificatefile" {
			list, limit = &o.certFiles, maxCertFiles
		}
		if len(*list) >= limit {
			return errorf(pos, "too many %s entries (max %d)", keyword, limit)
		}
		addFile(list, arg, userConf, pos)
	case "globalknownhostsfile", "userknownhostsfile":
		list := &o.systemHosts
		if keyword == "userknownhostsfile" {
			list = &o.userHosts
		}
		empty := len(*list) == 0
		for i := 0; len(av) > 0; i++ {
			arg, _ := next()
			if arg == "" {
				return errorf(pos, "keyword %s empty argument", keyword)
			}
			if strings.EqualFold(arg, "none") && (i > 0 || len(av) > 0) {
				return errorf(pos, "keyword %s \"none\" argument must appear alone", keyword)
			}
			if act && empty {
				if len(*list) >= maxHostsFiles {
					return errorf(pos, "too many %s entries", keyword)
				}
				*list = append(*list, arg)
				if keyword == "userknownhostsfile" {
					o.userHostsPos = pos
				}
			}
		}
	case "ciphers":
		err = parseAlgsTo(&o.ciphers, func(s string) bool { return namesValid(s, allCiphers) }, "SSH2 cipher spec")
	case "macs":
		err = parseAlgsTo(&o.macs, func(s string) bool { return namesValid(s, allMACs) }, "SSH2 MAC spec")
	case "kexalgorithms":
		err = parseAlgsTo(&o.kex, func(s string) bool { return namesValid(s, allKex) }, "SSH2 KexAlgorithms")
	case "hostkeyalgorithms":
		err = parseAlgsTo(&o.hostKeyAlgs, keyNamesValid, "key types")
	case "pubkeyacceptedalgorithms":
		err = parseAlgsTo(&o.pubkeyAlgs, keyNamesValid, "key types")
	case "proxycommand", "remotecommand":
		// The raw rest of the line, comment and all, as OpenSSH keeps it.
		// A ProxyJump sets ProxyCommand to "none", which is how a later
		// ProxyCommand loses to it (and "ProxyJump none" does not).
		p := &o.proxyCommand
		if keyword == "remotecommand" {
			p = &o.remoteCommand
		}
		setStr(p, strings.TrimLeft(str, whitespace+"="))
		consume()
	case "knownhostscommand":
		setStr(&o.knownHostsCommand, strings.TrimLeft(str, whitespace+"="))
		consume()
	case "proxyjump":
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		if err := r.parseJump(arg, act, pos); err != nil {
			return err
		}
		consume()
	case "localforward", "remoteforward", "dynamicforward":
		arg, _ := next()
		if arg == "" {
			return errorf(pos, "missing argument")
		}
		remote := keyword == "remoteforward"
		dynamic := keyword == "dynamicforward"
		spec := arg
		if !dynamic {
			arg2, _ := next()
			if arg2 == "" {
				if !remote {
					return errorf(pos, "missing target argument")
				}
				dynamic = true
			} else {
				spec = arg + ":" + arg2
			}
		}
		// OpenSSH builds the spec in a 256-byte buffer.
		if len(spec) > 255 {
			spec = spec[:255]
		}
		fwd, ok := parseForward(spec, dynamic, remote)
		if !ok {
			return errorf(pos, "bad forwarding specification")
		}
		if act {
			if remote {
				o.remoteFwds = addForward(o.remoteFwds, fwd)
			} else {
				o.localFwds = addForward(o.localFwds, fwd)
			}
		}
	case "sendenv":
		for len(av) > 0 {
			arg, _ := next()
			if arg == "" || strings.Contains(arg, "=") {
				return errorf(pos, "invalid environment name")
			}
			if !act {
				continue
			}
			if arg[0] == '-' {
				kept := o.sendEnv[:0]
				for _, e := range o.sendEnv {
					if !matchPattern(e, arg[1:]) {
						kept = append(kept, e)
					}
				}
				o.sendEnv = kept
				continue
			}
			o.sendEnv = append(o.sendEnv, arg)
		}
	case "setenv":
		// The first SetEnv line that applies wins whole: later lines are
		// checked but ignored, as in OpenSSH 9.2.
		had := len(o.setEnv) != 0
		for len(av) > 0 {
			arg, _ := next()
			if !strings.Contains(arg, "=") {
				return errorf(pos, "invalid SetEnv")
			}
			if !act || had {
				continue
			}
			if lookupSetEnv(o.setEnv, arg) {
				continue
			}
			if len(o.setEnv) == 0 {
				o.setEnvPos = pos
			}
			o.setEnv = append(o.setEnv, arg)
		}
	default:
		given := av
		err = checkIgnored(keyword, k, &av, str, pos)
		if err == nil {
			r.keep(keyword, k, given[:len(given)-len(av)], str, act)
		}
	}
	if err != nil {
		return err
	}
	if len(av) > 0 {
		return errorf(pos, "keyword %s extra arguments at end of line", keyword)
	}
	return nil
}

// checkIgnored validates a keyword rssh does not act on as strictly as
// OpenSSH would, then drops it.
func checkIgnored(keyword string, k kind, av *[]string, str string, pos Pos) error {
	args := *av
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	switch k {
	case kFlag:
		if first == "" {
			return errorf(pos, "missing argument")
		}
		if _, ok := parseMulti(first, multiFlag); !ok {
			return errorf(pos, "unsupported option %q", first)
		}
		*av = args[1:]
	case kMulti:
		if first == "" {
			return errorf(pos, "missing argument")
		}
		ok := false
		for _, v := range multiValues[keyword] {
			ok = ok || strings.EqualFold(v, first)
		}
		if !ok {
			return errorf(pos, "unsupported option %q", first)
		}
		*av = args[1:]
	case kInt:
		if first == "" {
			return errorf(pos, "integer value missing")
		}
		if _, e := strtonum(first, 0, 1<<31-1); e != "" {
			return errorf(pos, "integer value %s", e)
		}
		*av = args[1:]
	case kTime:
		if first == "" {
			return errorf(pos, "missing time value")
		}
		if first != "none" && convtime(first) == -1 {
			return errorf(pos, "invalid time value")
		}
		*av = args[1:]
	case kString:
		if first == "" {
			return errorf(pos, "missing argument")
		}
		*av = args[1:]
	case kStringArray:
		for i, a := range args {
			if a == "" {
				return errorf(pos, "keyword %s empty argument", keyword)
			}
			if strings.EqualFold(a, "none") && (i > 0 || len(args) > 1) {
				return errorf(pos, "keyword %s \"none\" argument must appear alone", keyword)
			}
		}
		*av = nil
	case kChecked:
		return checkValue(keyword, av, pos)
	default: // kCommand, kAny, kNoArgCheck
		*av = nil
	}
	return nil
}

// checkAgentPath validates an IdentityAgent or ForwardAgent socket path
// as parse_agent_path: ${VAR} must expand and a legacy $VAR must be a valid
// name.
func checkAgentPath(arg string, pos Pos) error {
	if _, err := dollarExpand(arg); err != nil {
		return errorf(pos, "invalid environment expansion %s", arg)
	}
	if len(arg) > 0 && arg[0] == '$' && (len(arg) < 2 || arg[1] != '{') && !validEnvName(arg[1:]) {
		return errorf(pos, "invalid environment name %s", arg)
	}
	return nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func addFile(list *[]fileEntry, path string, userProvided bool, pos Pos) {
	for _, e := range *list {
		if e.userProvided == userProvided && e.path == path {
			return
		}
	}
	*list = append(*list, fileEntry{path, userProvided, pos})
}

func addForward(list []forward, f forward) []forward {
	for _, e := range list {
		if e.equal(f) {
			return list
		}
	}
	return append(list, f)
}

// lookupSetEnv reports whether the variable named in arg (up to '=') is
// already in list.
func lookupSetEnv(list []string, arg string) bool {
	name := arg
	if i := strings.IndexByte(arg, '='); i >= 0 {
		name = arg[:i]
	}
	for _, e := range list {
		n := e
		if i := strings.IndexByte(e, '='); i >= 0 {
			n = e[:i]
		}
		if n == name {
			return true
		}
	}
	return false
}

// include handles one Include argument: relative paths are anchored at
// ~/.ssh (user files) or /etc/ssh (system files), the result globbed, and
// each file read with the including block's activity; a Match inside an
// included file does not leak out of it.
func (r *resolver) include(arg string, pos Pos, userConf bool, active *bool, depth int) error {
	if arg == "" {
		return errorf(pos, "keyword include empty argument")
	}
	if arg[0] == '~' && !userConf {
		return errorf(pos, "bad include path %s", arg)
	}
	pattern := arg
	if !filepath.IsAbs(arg) && arg[0] != '~' {
		if userConf {
			pattern = "~/.ssh/" + arg
		} else {
			pattern = "/etc/ssh/" + arg
		}
	}
	if strings.HasPrefix(pattern, "~") {
		exp, err := globTilde(pattern, r.envHome)
		if err != nil {
			return nil // glob(3) returns the pattern unexpanded: no match
		}
		pattern = exp
	}
	matches, err := glob(pattern)
	if err != nil {
		return errorf(pos, "glob failed for %s", pattern)
	}
	if depth+1 > maxIncludeDepth && len(matches) > 0 {
		return fatalf(pos, "too many recursive configuration includes")
	}
	oactive := *active
	for _, m := range matches {
		r.includes++
		if r.includes > maxIncludeFiles {
			return fatalf(pos, "too many included files")
		}
		found, err := r.readFile(m, userConf, true, !oactive, active, depth+1)
		*active = oactive
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return err
			}
			if !found && !errors.Is(err, fs.ErrNotExist) {
				return errorf(pos, "can't open config file %s: %v", m, unwrapPathErr(err))
			}
		}
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// globTilde expands a leading ~ or ~user as glob(3)'s GLOB_TILDE: plain ~
// is $HOME.
func globTilde(pattern, envHome string) (string, error) {
	rest := pattern[1:]
	i := strings.IndexByte(rest, '/')
	name := rest
	if i >= 0 {
		name = rest[:i]
		rest = rest[i:]
	} else {
		rest = ""
	}
	if name == "" {
		return envHome + rest, nil
	}
	h, err := userHome(name)
	if err != nil {
		return "", err
	}
	return h + rest, nil
}

// glob matches a pattern as glob(3) without flags: '*', '?' and '[...]'
// per path component, a leading '.' only matched explicitly, results in
// byte order.
func glob(pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, "*?[\\") {
		if _, err := os.Lstat(pattern); err != nil {
			return nil, nil
		}
		return []string{pattern}, nil
	}
	dir := "/"
	parts := strings.Split(pattern, "/")
	if !strings.HasPrefix(pattern, "/") {
		dir = "."
	}
	cur := []string{""}
	// A pattern like /*/*/*/* would walk the whole filesystem: give up
	// after a generous number of directory entries.
	budget := maxGlobEntries
	for i, part := range parts {
		if part == "" {
			continue
		}
		last := i == len(parts)-1
		var next []string
		for _, c := range cur {
			base := c
			if base == "" {
				base = dir
				if dir == "/" {
					c = ""
				}
			}
			if !strings.ContainsAny(part, "*?[\\") {
				p := joinGlob(c, part, dir)
				if _, err := os.Lstat(p); err == nil {
					next = append(next, p)
				}
				continue
			}
			if _, err := filepath.Match(part, ""); err != nil {
				return nil, err
			}
			ents, err := os.ReadDir(base)
			if err != nil {
				continue
			}
			budget -= len(ents)
			if budget < 0 {
				return nil, errors.New("too many files")
			}
			for _, e := range ents {
				n := e.Name()
				if n[0] == '.' && part[0] != '.' {
					continue
				}
				if ok, _ := filepath.Match(part, n); ok {
					p := joinGlob(c, n, dir)
					if !last {
						if st, err := os.Stat(p); err != nil || !st.IsDir() {
							continue
						}
					}
					next = append(next, p)
				}
			}
		}
		cur = next
		if len(cur) == 0 {
			return nil, nil
		}
	}
	sort.Strings(cur)
	return cur, nil
}

func joinGlob(prefix, name, root string) string {
	if prefix == "" {
		if root == "/" {
			return "/" + name
		}
		return name
	}
	return prefix + "/" + name
}
