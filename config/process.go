package config

import (
	"errors"
	"io"
	"os"
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

	// lines are processLine's, one per Include depth; cmdActive is a
	// command-line option's block activity.
	lines     []*line
	cmdActive bool
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

// processLine is process_config_line_depth, the driver of the keyword
// table (keywords.go): it splits the line, finds the keyword's row
// (IgnoreUnknown and bad keywords first), records where the option was
// first set, runs the row's parser and refuses what it left over. active
// is nil for a command-line option.
func (r *resolver) processLine(text string, pos Pos, active *bool, userConf, neverMatch bool, depth int) error {
	cmdline := active == nil
	if cmdline {
		// Always active: only Host and Match change it, and they are
		// refused on the command line.
		r.cmdActive = true
		active = &r.cmdActive
	}
	name, rest, blank, hasRest, _ := splitLine(text)
	if blank {
		return nil
	}
	if !hasRest {
		return errorf(pos, "no argument after keyword %q", name)
	}
	kw, known := keywords[name]
	if !known {
		if r.o.ignoredUnknown != nil && matchPatternList(name, r.o.ignoredUnknown.v, true) == 1 {
			if _, ok := argvSplit(rest); !ok {
				return errorf(pos, "invalid quotes")
			}
			return nil
		}
		return errorf(pos, "bad configuration option: %s", name)
	}
	args, ok := argvSplit(rest)
	if !ok {
		return errorf(pos, "invalid quotes")
	}
	if kw.alias != "" {
		name, kw = kw.alias, keywords[kw.alias]
	}
	if kw.directive && cmdline {
		return errorf(pos, "%s directive not supported as a command-line option", name)
	}
	// One line per Include depth, made once and reused: a line's parser
	// never keeps it, and only Include nests (one level deeper).
	d := max(depth, 0)
	for len(r.lines) <= d {
		r.lines = append(r.lines, new(line))
	}
	l := r.lines[d]
	*l = line{r: r, o: r.o, pos: pos, name: name, rest: rest, args: args, act: *active,
		active: active, userConf: userConf, neverMatch: neverMatch, depth: depth}
	if l.act && !kw.directive {
		if r.origins == nil {
			r.origins = map[string]Pos{}
		}
		if _, seen := r.origins[name]; !seen {
			r.origins[name] = pos
		}
	}
	if err := kw.parse(l); err != nil {
		return err
	}
	if len(l.args) > 0 {
		return errorf(pos, "keyword %s extra arguments at end of line", name)
	}
	return nil
}

// line is one configuration line as a row's parser sees it.
type line struct {
	r    *resolver
	o    *options
	pos  Pos
	name string   // the keyword, lowercase, aliases resolved
	rest string   // the raw text after the keyword (for commands and Match)
	args []string // the arguments not yet consumed
	act  bool     // the line applies: its Host or Match block is active

	// For the directives: the block's activity (Host and Match set it),
	// and how Include reads its files.
	active     *bool
	userConf   bool
	neverMatch bool
	depth      int
}

// next takes the next argument; ok is false when there is none.
func (l *line) next() (string, bool) {
	if len(l.args) == 0 {
		return "", false
	}
	a := l.args[0]
	l.args = l.args[1:]
	return a, true
}

// arg takes the next argument, "" when there is none.
func (l *line) arg() string {
	a, _ := l.next()
	return a
}

// consume takes every argument left.
func (l *line) consume() { l.args = nil }

func (l *line) errorf(format string, args ...any) error { return errorf(l.pos, format, args...) }

// setInt and setStr are "first value wins": the value is stored when
// the line applies and the option is still unset.
func (l *line) setInt(p *int, v int) {
	if l.act && *p == -1 {
		*p = v
	}
}

func (l *line) setStr(p **sval, v string) {
	if l.act && *p == nil {
		*p = &sval{v, l.pos}
	}
}

// The value parsers: each takes its arguments and returns ssh's error
// for a bad one. They set nothing.

// choiceArg is parse_multistate's value: one of m's names, in any case.
func (l *line) choiceArg(m []multi) (int, error) {
	arg := l.arg()
	if arg == "" {
		return 0, l.errorf("missing argument")
	}
	v, ok := parseMulti(arg, m)
	if !ok {
		return 0, l.errorf("unsupported option %q", arg)
	}
	return v, nil
}

// timeArg is parse_time's value in seconds; "none" is -1 (unset).
func (l *line) timeArg() (int, error) {
	arg := l.arg()
	if arg == "" {
		return 0, l.errorf("missing time value")
	}
	if arg == "none" {
		return -1, nil
	}
	v := convtime(arg)
	if v == -1 {
		return 0, l.errorf("invalid time value")
	}
	return v, nil
}

// intArg is parse_int's value.
func (l *line) intArg() (int, error) {
	arg, has := l.next()
	if !has || arg == "" {
		return 0, l.errorf("integer value missing")
	}
	n, e := strtonum(arg, 0, 1<<31-1)
	if e != "" {
		return 0, l.errorf("integer value %s", e)
	}
	return int(n), nil
}

// stringArg is parse_string's value.
func (l *line) stringArg() (string, error) {
	arg := l.arg()
	if arg == "" {
		return "", l.errorf("missing argument")
	}
	return arg, nil
}

// commandArg is parse_command's value: the raw rest of the line, comment
// and all, as OpenSSH keeps it.
func (l *line) commandArg() (string, error) {
	l.consume()
	return strings.TrimLeft(l.rest, whitespace+"="), nil
}

// algsArg is an algorithm list: names valid checks, after any leading
// + or ^; a list that removes (-) is not checked.
func (l *line) algsArg(valid func(string) bool, what string) (string, error) {
	arg := l.arg()
	if arg == "" {
		return "", l.errorf("missing argument")
	}
	if arg[0] != '-' {
		n := arg
		if n[0] == '+' || n[0] == '^' {
			n = n[1:]
		}
		if !valid(n) {
			return "", l.errorf("bad %s '%s'", what, arg)
		}
	}
	return arg, nil
}

// portArg is Port: a number or a service name.
func (l *line) portArg() (int, error) {
	arg := l.arg()
	if arg == "" {
		return 0, l.errorf("missing argument")
	}
	v := a2port(arg)
	if v <= 0 {
		return 0, l.errorf("bad port '%s'", arg)
	}
	return v, nil
}

func (l *line) logLevelArg() (int, error) {
	arg := l.arg()
	v, ok := parseMulti(arg, logLevels)
	if !ok {
		return 0, l.errorf("unsupported log level '%s'", arg)
	}
	return v, nil
}

// escapeCharArg is EscapeChar: "none", one byte, or ^X for a control
// byte.
func (l *line) escapeCharArg() (int, error) {
	arg := l.arg()
	switch {
	case arg == "":
		return 0, l.errorf("missing argument")
	case arg == "none":
		return escapeNone, nil
	case len(arg) == 1:
		return int(arg[0]), nil
	case arg[0] == '^' && len(arg) == 2 && arg[1] >= 64 && arg[1] < 128:
		return int(arg[1]) & 31, nil
	}
	return 0, l.errorf("bad escape character")
}

// agentPathArg is parse_agent_path's value (IdentityAgent).
func (l *line) agentPathArg() (string, error) {
	arg := l.arg()
	if arg == "" {
		return "", l.errorf("missing argument")
	}
	if err := checkAgentPath(arg, l.pos); err != nil {
		return "", err
	}
	return arg, nil
}

// tokenTransportArg is rssh's RsshTokenTransport: env or lc.
func (l *line) tokenTransportArg() (string, error) {
	arg := l.arg()
	if arg != "env" && arg != "lc" {
		return "", l.errorf("bad RsshTokenTransport %q: want env or lc", arg)
	}
	return arg, nil
}

// eachListArg takes every argument of a list keyword, refusing an empty
// one and a "none" that is not alone as ssh does, and hands each to add
// in turn (nil only checks).
func (l *line) eachListArg(add func(arg string) error) error {
	for i := 0; len(l.args) > 0; i++ {
		arg := l.arg()
		if arg == "" {
			return l.errorf("keyword %s empty argument", l.name)
		}
		if strings.EqualFold(arg, "none") && (i > 0 || len(l.args) > 0) {
			return l.errorf("keyword %s \"none\" argument must appear alone", l.name)
		}
		if add != nil {
			if err := add(arg); err != nil {
				return err
			}
		}
	}
	return nil
}

// keepIgnored is the parser of a keyword rssh does not act on: its
// arguments are checked as strictly as OpenSSH checks them, then kept as
// given for -G (keep, dumpkeys.go). m is kMulti's names.
func (l *line) keepIgnored(k kind, m []multi) error {
	given := l.args
	var err error
	switch k {
	case kFlag:
		_, err = l.choiceArg(multiFlag)
	case kMulti:
		_, err = l.choiceArg(m)
	case kInt:
		_, err = l.intArg()
	case kTime:
		_, err = l.timeArg()
	case kString:
		_, err = l.stringArg()
	case kStringArray:
		err = l.eachListArg(nil)
	case kChecked:
		err = checkValue(l.name, &l.args, l.pos)
	default: // kCommand, kAny
		l.consume()
	}
	if err != nil {
		return err
	}
	l.r.keep(l.name, k, given[:len(given)-len(l.args)], l.rest, l.act)
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
