package config

import "strings"

// The rows of the keyword table (keywords.go) that are more than one
// scalar value: the Host, Match and Include directives, and the keywords
// whose value is a list or several fields. Each is readconf.c's case for
// the keyword, with its own first-value-wins rule.

// host is a Host line: the block applies when a pattern matches the host
// and no negated one does.
func (l *line) host() error {
	*l.active = false
	for len(l.args) > 0 {
		arg := l.arg()
		if arg == "" {
			return l.errorf("keyword host empty argument")
		}
		if l.neverMatch {
			l.consume()
			break
		}
		negated := arg[0] == '!'
		if negated {
			arg = arg[1:]
		}
		if matchPattern(l.r.host, arg) {
			if negated {
				*l.active = false
				l.consume()
				break
			}
			*l.active = true
		}
	}
	return nil
}

// match is a Match line (matchline.go).
func (l *line) match() error {
	v, rest, err := l.r.matchLine(l.rest, l.pos)
	if err != nil {
		return err
	}
	*l.active = v && !l.neverMatch
	if rest == "" {
		l.consume()
	} else {
		// Arguments the criteria did not use fail the extra
		// arguments check, as in OpenSSH.
		l.args, _ = argvSplit(rest)
	}
	return nil
}

// include reads the files each argument names (include.go).
func (l *line) include() error {
	for len(l.args) > 0 {
		if err := l.r.include(l.arg(), l.pos, l.userConf, l.active, l.depth); err != nil {
			return err
		}
	}
	return nil
}

// proxyJump checks every hop and keeps the chain (jump.go); the rest of
// the line is ignored, as in OpenSSH.
func (l *line) proxyJump() error {
	arg := l.arg()
	if arg == "" {
		return l.errorf("missing argument")
	}
	if err := l.r.parseJump(arg, l.act, l.pos); err != nil {
		return err
	}
	l.consume()
	return nil
}

// canonicalizeHostname also records where it was set, for the errors
// about canonicalization rssh cannot do.
func (l *line) canonicalizeHostname() error {
	v, err := l.choiceArg(multiCanon)
	if err != nil {
		return err
	}
	if l.act && l.o.canonHostname == -1 {
		l.o.canonHostPos = l.pos
	}
	l.setInt(&l.o.canonHostname, v)
	return nil
}

// canonicalDomains: the first line that applies sets the list.
func (l *line) canonicalDomains() error {
	o := l.o
	had := len(o.canonDomains) != 0
	return l.eachListArg(func(arg string) error {
		if !l.act || had {
			return nil
		}
		if len(o.canonDomains) >= maxCanonDomains {
			return l.errorf("too many hostname suffixes")
		}
		o.canonDomains = append(o.canonDomains, arg)
		o.canonDomainPos = l.pos
		return nil
	})
}

// permittedCNAMEs: source:target pairs, "*" or "none"; the first line
// that applies sets the list.
func (l *line) permittedCNAMEs() error {
	o := l.o
	had := len(o.canonCNAMEs) != 0
	for i := 0; len(l.args) > 0; i++ {
		arg := l.arg()
		if strings.EqualFold(arg, "none") {
			if i > 0 || len(l.args) > 0 {
				return l.errorf("keyword canonicalizepermittedcnames \"none\" argument must appear alone")
			}
		} else if arg != "*" {
			c := strings.IndexByte(arg, ':')
			if c < 0 || c == len(arg)-1 {
				return l.errorf("invalid permitted CNAME \"%s\"", arg)
			}
		}
		if l.act && !had {
			if len(o.canonCNAMEs) >= maxCanonDomains {
				return l.errorf("too many permitted cnames")
			}
			o.canonCNAMEs = append(o.canonCNAMEs, arg)
		}
	}
	return nil
}

func (l *line) userKnownHostsFile() error {
	return l.knownHostsFiles(&l.o.userHosts, &l.o.userHostsPos)
}

func (l *line) globalKnownHostsFile() error { return l.knownHostsFiles(&l.o.systemHosts, nil) }

// knownHostsFiles: the first line that applies sets the list (and *pos,
// when not nil).
func (l *line) knownHostsFiles(list *[]string, pos *Pos) error {
	empty := len(*list) == 0
	return l.eachListArg(func(arg string) error {
		if !l.act || !empty {
			return nil
		}
		if len(*list) >= maxHostsFiles {
			return l.errorf("too many %s entries", l.name)
		}
		*list = append(*list, arg)
		if pos != nil {
			*pos = l.pos
		}
		return nil
	})
}

func (l *line) identityFile() error { return l.fileList(&l.o.identityFiles, maxIdentityFiles) }

func (l *line) certificateFile() error { return l.fileList(&l.o.certFiles, maxCertFiles) }

// fileList adds a file to IdentityFile's or CertificateFile's list: every
// line that applies adds one, a duplicate dropped.
func (l *line) fileList(list *[]fileEntry, limit int) error {
	arg := l.arg()
	if arg == "" {
		return l.errorf("missing argument")
	}
	if !l.act {
		return nil
	}
	if len(*list) >= limit {
		return l.errorf("too many %s entries (max %d)", l.name, limit)
	}
	addFile(list, arg, l.userConf, l.pos)
	return nil
}

// addKeysToAgent: yes, no, ask or confirm, and a lifetime after confirm
// or alone; the two are set together.
func (l *line) addKeysToAgent() error {
	arg := l.arg()
	arg2, has2 := l.next()
	v, ok := parseMulti(arg, multiAddKeys)
	if arg == "" {
		ok = false
	}
	life := 0
	switch {
	case ok && v == 3 && has2:
		if life = convtime(arg2); life == -1 {
			return l.errorf("invalid time value")
		}
	case !ok && !has2:
		if life = convtime(arg); life == -1 {
			return l.errorf("unsupported option")
		}
		v = 1
	case !ok || has2:
		return l.errorf("unsupported option")
	}
	if l.act && l.o.addKeys == -1 {
		l.o.addKeys = v
		l.o.addKeysLife = life
	}
	return nil
}

// forwardAgent: a flag, or a socket path (which means yes).
func (l *line) forwardAgent() error {
	o := l.o
	arg := l.arg()
	if arg == "" {
		return l.errorf("missing argument")
	}
	if v, ok := parseMulti(arg, multiFlag); ok {
		l.setInt(&o.forwardAgent, v)
		return nil
	}
	l.setInt(&o.forwardAgent, 1)
	if err := checkAgentPath(arg, l.pos); err != nil {
		return err
	}
	l.setStr(&o.forwardAgentSock, arg)
	return nil
}

// forward is LocalForward, RemoteForward and DynamicForward: every line
// that applies adds one, a duplicate dropped. A RemoteForward with one
// argument is a dynamic one.
func (l *line) forward() error {
	arg := l.arg()
	if arg == "" {
		return l.errorf("missing argument")
	}
	remote := l.name == "remoteforward"
	dynamic := l.name == "dynamicforward"
	spec := arg
	if !dynamic {
		arg2 := l.arg()
		if arg2 == "" {
			if !remote {
				return l.errorf("missing target argument")
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
		return l.errorf("bad forwarding specification")
	}
	if l.act {
		if remote {
			l.o.remoteFwds = addForward(l.o.remoteFwds, fwd)
		} else {
			l.o.localFwds = addForward(l.o.localFwds, fwd)
		}
	}
	return nil
}

// sendEnv: every line that applies adds its patterns; "-pattern" removes
// those it matches.
func (l *line) sendEnv() error {
	o := l.o
	for len(l.args) > 0 {
		arg := l.arg()
		if arg == "" || strings.Contains(arg, "=") {
			return l.errorf("invalid environment name")
		}
		if !l.act {
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
	return nil
}

// setEnv: the first SetEnv line that applies wins whole; later lines are
// checked but ignored, as in OpenSSH 9.2.
func (l *line) setEnv() error {
	o := l.o
	had := len(o.setEnv) != 0
	for len(l.args) > 0 {
		arg := l.arg()
		if !strings.Contains(arg, "=") {
			return l.errorf("invalid SetEnv")
		}
		if !l.act || had {
			continue
		}
		if lookupSetEnv(o.setEnv, arg) {
			continue
		}
		if len(o.setEnv) == 0 {
			o.setEnvPos = l.pos
		}
		o.setEnv = append(o.setEnv, arg)
	}
	return nil
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
