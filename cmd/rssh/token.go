package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/sshproxy"
)

// runToken is `rssh --token list|clear [ENV]|refresh ENV`: the token cache.
// Values are never printed; list shows environments and ages.
func runToken(args []string, std stdio, getenv func(string) string) int {
	log := slog.New(newSSHLogHandler(std.err, newLogLevel("ERROR")))
	if len(args) > 0 && args[0] == "-v" {
		log = slog.New(newSSHLogHandler(std.err, newLogLevel("DEBUG1")))
		args = args[1:]
	}
	if len(args) == 0 {
		fail(std.err, &hintError{err: errors.New("--token needs a command"), hint: "rssh --token list | clear [ENV] | refresh ENV"})
		return sshproxy.ExitFailure
	}
	r := &envmap.Resolver{Cache: envmap.OpenCache(log), Log: log}
	cmd, rest := args[0], args[1:]
	var err error
	switch {
	case cmd == "list" && len(rest) == 0:
		err = listTokens(r, std)
	case cmd == "clear" && len(rest) <= 1:
		vault, env := "", ""
		if len(rest) == 1 {
			env = rest[0]
			if err = envmap.ValidName(env); err == nil {
				vault, err = envmap.VaultFromEnv(getenv)
			}
		}
		if err == nil {
			err = r.Clear(vault, env)
		}
	case cmd == "refresh" && len(rest) == 1:
		var vault string
		if err = envmap.ValidName(rest[0]); err == nil {
			vault, err = envmap.VaultFromEnv(getenv)
		}
		if err == nil {
			var tok envmap.Token
			tok, err = r.Refresh(context.Background(), vault, rest[0])
			tok.Wipe()
		}
	default:
		err = &hintError{err: fmt.Errorf("--token %s: unknown command or wrong arguments", strings.Join(args, " ")), hint: "rssh --token list | clear [ENV] | refresh ENV"}
	}
	if err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	return 0
}

func listTokens(r *envmap.Resolver, std stdio) error {
	entries, err := r.List()
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "cache: %s\n", r.Cache)
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tVAULT\tAGE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Env, e.Vault, time.Since(e.Fetched).Round(time.Second))
	}
	return tw.Flush()
}
