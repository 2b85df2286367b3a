package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rssh/rssh/secret"
	"github.com/rssh/rssh/sshproxy"
)

// secretCommands is `rssh secret NAME`: the remote and host side, each
// command in a file of its own.
var secretCommands = map[string]func(args []string, std stdio, getenv func(string) string) int{
	"read":         runSecretRead,
	"inject":       runSecretInject,
	"run":          runSecretRun,
	"fetch":        runSecretFetch,
	"systemd-unit": runSecretUnit,
}

// exitSecretFailed is the status of a secret command that failed itself
// (bad usage, no token, a reference that did not resolve): 255, as ssh
// fails, where op exits 1; so `rssh secret run` can tell its own failure
// from the command's status 1.
const exitSecretFailed = sshproxy.ExitFailure

// runSecret dispatches `rssh secret …`. The word "secret" in first position
// is always this command; a host of that name stays reachable as
// user@secret or `rssh -- secret`.
func runSecret(args []string, std stdio, getenv func(string) string) int {
	if len(args) == 0 {
		fail(std.err, &hintError{err: errors.New("secret needs a command"), hint: "rssh secret read | run | inject | fetch | systemd-unit"})
		return sshproxy.ExitFailure
	}
	f, ok := secretCommands[args[0]]
	if !ok {
		names := slices.Sorted(maps.Keys(secretCommands))
		fail(std.err, &hintError{err: fmt.Errorf("secret %s: unknown command", args[0]), hint: "rssh secret " + strings.Join(names, " | ")})
		return sshproxy.ExitFailure
	}
	return f(args[1:], std, getenv)
}

func notYet(std stdio, what string) int {
	fail(std.err, fmt.Errorf("%s: not implemented yet", what))
	return sshproxy.ExitFailure
}

// secretFlags are one secret command's flags: the shared --token-file and
// --backend, and the command's own, which it adds to fs before parse.
type secretFlags struct {
	name      string // "read", "inject", …
	usage     string // the synopsis, printed for -h and on a usage error's hint line
	fs        *flag.FlagSet
	tokenFile string
	backend   string
}

// secretBackendHelp is the --backend values, for messages.
const secretBackendHelp = "op | sdk | forward | auto"

func newSecretFlags(name, usage string) *secretFlags {
	f := &secretFlags{name: name, usage: usage, fs: flag.NewFlagSet("rssh secret "+name, flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	f.fs.StringVar(&f.tokenFile, "token-file", "", "read the Service Account token from `FILE`")
	f.fs.StringVar(&f.backend, "backend", "", "resolve with "+secretBackendHelp+" (default $RSSH_SECRET_BACKEND, else auto)")
	return f
}

// errSecretHelp is -h / --help: the usage went to stdout, exit 0.
var errSecretHelp = errors.New("help")

// parse parses args and returns the positional ones. Flags may come
// before, between or after them (as op's do), up to "--"; with stopAtArg
// the first positional argument ends the flags and it and everything after
// it are returned as they are (run: the command and its own flags).
func (f *secretFlags) parse(args []string, stopAtArg bool) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			return append(pos, args[1:]...), nil
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			if stopAtArg {
				return append(pos, args...), nil
			}
			pos = append(pos, a)
			args = args[1:]
			continue
		}
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errSecretHelp
			}
			return nil, f.usageErr("%v", err)
		}
		rest := f.fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		args = rest
	}
	return pos, nil
}

// usageErr is a command-line mistake, with the synopsis as its fix.
func (f *secretFlags) usageErr(format string, a ...any) error {
	return &wrapped{prefix: "secret " + f.name, err: &hintError{err: fmt.Errorf(format, a...), hint: "usage: " + f.usage}}
}

// fail reports err from this command in rssh's voice and returns the
// exit status: 0 for -h (the usage on stdout), else exitSecretFailed.
func (f *secretFlags) fail(std stdio, err error) int {
	if errors.Is(err, errSecretHelp) {
		fmt.Fprintln(std.out, "usage: "+f.usage)
		return 0
	}
	if _, ok := err.(*wrapped); !ok {
		err = &wrapped{prefix: "secret " + f.name, err: err}
	}
	fail(std.err, err)
	return exitSecretFailed
}

// wrapped prefixes an error's message and keeps its hint reachable.
type wrapped struct {
	prefix string
	err    error
}

func (w *wrapped) Error() string { return w.prefix + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// open opens the backend this command's --backend and --token-file ask for.
func (f *secretFlags) open(getenv func(string) string) (secret.Backend, error) {
	return openSecretBackend(f.backend, f.tokenFile, getenv)
}

// fileModeFlag is --file-mode: an octal permission, 0600 by default.
type fileModeFlag os.FileMode

func (m *fileModeFlag) String() string { return fmt.Sprintf("%04o", uint32(*m)) }

func (m *fileModeFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("file mode %q: want octal permission bits such as 0600", s)
	}
	*m = fileModeFlag(n)
	return nil
}
