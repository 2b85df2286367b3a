package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rssh/rssh/secret"
)

const secretFetchUsage = "rssh secret fetch --out FILE [--attempts N] [--file-mode 0400] [--allow-disk] [--lock FILE] [--max-wait DURATION] [--token-file FILE] [--backend op|sdk|forward|auto] NAME=op://vault/item/[section/]field..."

// runSecretFetch is the service tool: it resolves every NAME=op://…
// (one batch per attempt, retried with backoff, 1Password's rate limits
// waited out), under a lock beside FILE, and writes FILE as an
// EnvironmentFile that systemd and `. FILE` read back exactly: on
// tmpfs/ramfs only (unless --allow-disk), directory 0700, file 0400,
// replaced atomically. On failure FILE is as it was.
func runSecretFetch(args []string, std stdio, getenv func(string) string) int {
	f := newSecretFlags("fetch", secretFetchUsage)
	var c secret.FetchConfig
	mode := fileModeFlag(0o400)
	f.fs.StringVar(&c.Out, "out", "", "write the EnvironmentFile `FILE`")
	f.fs.StringVar(&c.Out, "o", "", "write the EnvironmentFile `FILE`")
	f.fs.IntVar(&c.Attempts, "attempts", secret.DefaultAttempts, "try at most `N` times")
	f.fs.Var(&mode, "file-mode", "the mode of FILE")
	f.fs.BoolVar(&c.AllowDisk, "allow-disk", false, "allow FILE on a filesystem that is not tmpfs or ramfs")
	f.fs.StringVar(&c.LockFile, "lock", "", "serialise on `FILE` (default .NAME.lock beside FILE)")
	f.fs.DurationVar(&c.MaxWait, "max-wait", secret.DefaultMaxWait, "the longest wait a rate limit may ask for")
	pos, err := f.parse(args, false)
	if err != nil {
		return f.fail(std, err)
	}
	if c.Out == "" {
		return f.fail(std, f.usageErr("--out FILE is required"))
	}
	if len(pos) == 0 {
		return f.fail(std, f.usageErr("nothing to fetch: give NAME=op://vault/item/field"))
	}
	if c.Attempts < 1 {
		return f.fail(std, f.usageErr("--attempts %d: at least 1", c.Attempts))
	}
	if c.MaxWait <= 0 {
		return f.fail(std, f.usageErr("--max-wait %v: must be positive", c.MaxWait))
	}
	for _, a := range pos {
		name, ref, ok := strings.Cut(a, "=")
		if !ok {
			return f.fail(std, f.usageErr("%q: want NAME=op://vault/item/field", a))
		}
		c.Vars = append(c.Vars, secret.FetchVar{Name: name, Ref: ref})
	}
	c.FileMode = os.FileMode(mode)
	c.Log = std.err
	if c.Backend, err = f.open(getenv); err != nil {
		return f.fail(std, err)
	}
	// SIGINT, SIGTERM or SIGHUP (systemd stopping the unit, a start
	// timeout) end the fetch cleanly: no op left running, no temporary
	// file left behind, the old file as it was.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := secret.Fetch(ctx, c); err != nil {
		if ctx.Err() != nil {
			err = errors.New("stopped by a signal; the file is as it was")
		}
		return f.fail(std, fmt.Errorf("%s: %w", c.Out, err))
	}
	return 0
}
