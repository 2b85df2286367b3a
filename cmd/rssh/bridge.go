package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const bridgeUsage = `usage: rssh --bridge [--listen PATH] [--upstream PATH] [--allow-uid UID]...
            [--allow-key SHA256:...]... [--allow-host-key SHA256:...]...
            [--log-format text|json] [-v] [--version]
                  run the agent bridge daemon in the foreground
       rssh --bridge [daemon options] --print-service launchd|systemd
                  print a launchd user agent or systemd user unit running it
       rssh --bridge [-F configfile] [-v] HOST PORT
                  relay stdin/stdout to HOST:PORT (ProxyCommand rssh --bridge %h %p)
       rssh --bridge [-F configfile] [--listen PATH] --nix-machine HOST
            [--system SYSTEM]... [--max-jobs N] [--speed-factor N]
            [--supported-features F,...] [--mandatory-features F,...]
            [--nix-module nix-darwin|nixos]
                  print the Nix machines line (or module) for a builder`

// bridgeArgs is `rssh --bridge …` parsed.
type bridgeArgs struct {
	// daemon
	listen, upstream string
	allowUIDs        []uint32 // nil: the default (root)
	allowKeys        []string
	allowHostKeys    []string
	logFormat        string
	printService     string
	daemonFlags      []string // the daemon flags as given, for --print-service

	// relay and Nix helper
	configFile string
	verbose    int
	positional []string

	nixMachine        string
	nixModule         string
	systems           []string
	maxJobs           int
	speedFactor       int
	supportedFeatures string
	mandatoryFeatures string
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// countFlag counts -v.
type countFlag int

func (c *countFlag) String() string   { return strconv.Itoa(int(*c)) }
func (c *countFlag) Set(string) error { *c++; return nil }
func (c *countFlag) IsBoolFlag() bool { return true }

// uidFlag is --allow-uid: a number, repeatable; "none" means the owner only.
type uidFlag struct{ uids *[]uint32 }

func (u uidFlag) String() string { return "" }
func (u uidFlag) Set(v string) error {
	if *u.uids == nil {
		*u.uids = []uint32{}
	}
	if v == "none" {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("not a numeric uid (or none)")
	}
	*u.uids = append(*u.uids, uint32(n))
	return nil
}

// recorded is a flag.Value that also notes each use as argv words.
type recorded struct {
	flag.Value
	name string
	out  *[]string
}

func (r *recorded) Set(v string) error {
	if err := r.Value.Set(v); err != nil {
		return err
	}
	if r.name == "v" {
		*r.out = append(*r.out, "-v")
	} else {
		*r.out = append(*r.out, "--"+r.name, v)
	}
	return nil
}

func (r *recorded) IsBoolFlag() bool {
	b, ok := r.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// daemonFlagNames are the flags that configure the daemon; --print-service
// repeats them in the service's command line.
var daemonFlagNames = map[string]bool{
	"listen": true, "upstream": true, "allow-uid": true, "allow-key": true,
	"allow-host-key": true, "log-format": true, "v": true,
}

func parseBridgeArgs(args []string) (*bridgeArgs, error) {
	a := &bridgeArgs{}
	fs := flag.NewFlagSet("rssh --bridge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.listen, "listen", "", "")
	fs.StringVar(&a.upstream, "upstream", "", "")
	fs.Var(uidFlag{&a.allowUIDs}, "allow-uid", "")
	fs.Var((*listFlag)(&a.allowKeys), "allow-key", "")
	fs.Var((*listFlag)(&a.allowHostKeys), "allow-host-key", "")
	fs.StringVar(&a.logFormat, "log-format", "text", "")
	fs.StringVar(&a.printService, "print-service", "", "")
	fs.StringVar(&a.configFile, "F", "", "")
	fs.Var((*countFlag)(&a.verbose), "v", "")
	fs.StringVar(&a.nixMachine, "nix-machine", "", "")
	fs.StringVar(&a.nixModule, "nix-module", "", "")
	fs.Var((*listFlag)(&a.systems), "system", "")
	fs.IntVar(&a.maxJobs, "max-jobs", 0, "")
	fs.IntVar(&a.speedFactor, "speed-factor", 0, "")
	fs.StringVar(&a.supportedFeatures, "supported-features", "", "")
	fs.StringVar(&a.mandatoryFeatures, "mandatory-features", "", "")
	var showVersion bool
	fs.BoolVar(&showVersion, "version", false, "")
	fs.BoolVar(&showVersion, "V", false, "")
	// Record the daemon's flags in argv order, for --print-service.
	fs.VisitAll(func(f *flag.Flag) {
		if daemonFlagNames[f.Name] {
			f.Value = &recorded{Value: f.Value, name: f.Name, out: &a.daemonFlags}
		}
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errBridgeHelp
		}
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok {
			return nil, &usageError{"--bridge: unknown option " + name}
		}
		return nil, &usageError{"--bridge: " + err.Error()}
	}
	if showVersion {
		return nil, errBridgeVersion
	}
	a.positional = fs.Args()
	var given []string
	fs.Visit(func(f *flag.Flag) { given = append(given, f.Name) })
	return a, a.validate(given)
}

// validate refuses flags that the chosen mode would ignore.
func (a *bridgeArgs) validate(given []string) error {
	mode := "daemon"
	switch {
	case a.nixMachine != "":
		mode = "nix"
	case a.printService != "":
		mode = "service"
	case len(a.positional) == 2:
		mode = "relay"
	case len(a.positional) != 0:
		return &usageError{"--bridge takes no destination, or HOST PORT for the relay"}
	}
	allowed := map[string][]string{
		"daemon":  {"listen", "upstream", "allow-uid", "allow-key", "allow-host-key", "log-format", "v"},
		"service": {"listen", "upstream", "allow-uid", "allow-key", "allow-host-key", "log-format", "v", "print-service"},
		"relay":   {"F", "v"},
		"nix": {"F", "v", "listen", "nix-machine", "nix-module", "system", "max-jobs", "speed-factor",
			"supported-features", "mandatory-features", "allow-host-key"},
	}[mode]
	for _, g := range given {
		ok := false
		for _, n := range allowed {
			ok = ok || n == g
		}
		if !ok {
			what := map[string]string{"daemon": "the daemon", "service": "--print-service",
				"relay": "the relay (HOST PORT)", "nix": "--nix-machine"}[mode]
			return &usageError{fmt.Sprintf("--bridge: -%s%s does not apply to %s", map[bool]string{true: "-"}[len(g) > 1], g, what)}
		}
	}
	if mode == "nix" && len(a.positional) != 0 {
		return &usageError{"--nix-machine takes the host as its value, and no other arguments"}
	}
	switch a.logFormat {
	case "text", "json":
	default:
		return &usageError{fmt.Sprintf("--log-format %q: want text or json", a.logFormat)}
	}
	if a.printService != "" && a.printService != "launchd" && a.printService != "systemd" {
		return &usageError{fmt.Sprintf("--print-service %q: want launchd or systemd", a.printService)}
	}
	if a.nixModule != "" && a.nixModule != "nix-darwin" && a.nixModule != "nixos" {
		return &usageError{fmt.Sprintf("--nix-module %q: want nix-darwin or nixos", a.nixModule)}
	}
	if a.maxJobs < 0 || a.speedFactor < 0 {
		return &usageError{"--max-jobs and --speed-factor must be positive"}
	}
	return nil
}

// runBridge is `rssh --bridge …`: with no destination the agent bridge
// daemon, with HOST PORT the ProxyCommand relay, plus the service-file and
// Nix helpers.
func runBridge(args []string, std stdio, getenv func(string) string) int {
	a, err := parseBridgeArgs(args)
	if err == errBridgeHelp {
		// Asked for, so on stdout with success, as rssh --help.
		io.WriteString(std.out, bridgeUsage+"\n")
		return 0
	}
	if err == errBridgeVersion {
		// As rssh -V: on stderr, as ssh prints its version.
		io.WriteString(std.err, versionString()+"\n")
		return 0
	}
	if err != nil {
		fail(std.err, err)
		var u *usageError
		if errors.As(err, &u) {
			io.WriteString(std.err, bridgeUsage+"\n")
		}
		return exitFailure
	}
	switch {
	case a.nixMachine != "":
		err = runNixMachine(a, std)
	case a.printService != "":
		err = printService(a, std.out, getenv)
	case len(a.positional) == 2:
		err = runRelay(a, std, getenv)
	default:
		err = runDaemon(a, std, getenv)
	}
	if err != nil {
		if err != errInterrupted {
			fail(std.err, err)
		}
		return exitFailure
	}
	return 0
}

const exitFailure = 255

var (
	errBridgeHelp    = errors.New("--bridge: help requested")
	errBridgeVersion = errors.New("--bridge: version requested")
)

// hintError is an error with the fix to print on a second line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string    { return e.err.Error() }
func (e *hintError) Unwrap() error    { return e.err }
func (e *hintError) HintText() string { return e.hint }
