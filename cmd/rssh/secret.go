package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

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
