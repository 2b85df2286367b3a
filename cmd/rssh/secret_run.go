package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/rssh/rssh/secret"
)

const secretRunUsage = "rssh secret run [--env-file FILE]... [--no-masking] [--keep-token] [--token-file FILE] [--backend op|sdk|forward|auto] -- CMD [ARG]..."

// runSecretRun is `rssh secret run -- CMD ARGS…`, as `op run`: every
// variable of the environment and of the --env-files (a later file wins,
// and a file wins over the environment) whose value is an op:// reference
// is resolved, all in one batch, and CMD runs with the values. CMD's
// stdout and stderr are masked unless --no-masking. The exit status is
// CMD's (128+n for a signal n); 255 when rssh failed before CMD ran, 127
// or 126 when CMD could not be started. The Service Account token is not
// in CMD's environment unless --keep-token.
func runSecretRun(args []string, std stdio, getenv func(string) string) int {
	f := newSecretFlags("run", secretRunUsage)
	var envFiles stringsFlag
	var noMasking, keepToken bool
	f.fs.Var(&envFiles, "env-file", "read variables from `FILE` (repeatable; a later file wins)")
	f.fs.BoolVar(&noMasking, "no-masking", false, "pass CMD's output through without concealing secrets")
	f.fs.BoolVar(&keepToken, "keep-token", false, "leave the Service Account token in CMD's environment ("+secret.TokenEnv+")")
	cmd, err := f.parse(args, true)
	if err != nil {
		return f.fail(std, err)
	}
	if len(cmd) == 0 {
		return f.fail(std, f.usageErr("no command to run"))
	}
	cfg := secret.RunConfig{
		Args:      cmd,
		Environ:   os.Environ(),
		EnvFiles:  envFiles,
		Drop:      []string{secret.TokenEnv},
		NoMasking: noMasking,
		Backend:   func() (secret.Backend, error) { return f.open(getenv) },
		Stdin:     std.in,
		Stdout:    std.out,
		Stderr:    std.err,
	}
	if keepToken {
		tok, err := secret.LoadToken(f.tokenFile, getenv)
		if err != nil {
			return f.fail(std, err)
		}
		defer tok.Wipe()
		cfg.Set = []secret.EnvVar{{Name: secret.TokenEnv, Value: string(tok.Reveal())}}
		cfg.Mask = [][]byte{tok.Reveal()}
	}
	code, err := secret.Run(context.Background(), cfg)
	if err != nil {
		f.fail(std, err)
		var ee *secret.ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
	}
	return code
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }
