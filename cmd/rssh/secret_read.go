package main

import (
	"context"
	"os"

	"github.com/rssh/rssh/secret"
)

const secretReadUsage = "rssh secret read [-n] [-o FILE [--file-mode 0600]] [--token-file FILE] [--backend op|sdk|forward|auto] op://vault/item/[section/]field[?attribute=otp]"

// runSecretRead is `rssh secret read REF`, as `op read`: the value and a
// newline on stdout (-n: the value's bytes alone). With -o the same bytes
// go to FILE instead, replaced atomically with --file-mode (default 0600).
func runSecretRead(args []string, std stdio, getenv func(string) string) int {
	f := newSecretFlags("read", secretReadUsage)
	var noNewline, force bool
	var out string
	mode := fileModeFlag(0o600)
	f.fs.BoolVar(&noNewline, "n", false, "no newline after the value")
	f.fs.BoolVar(&noNewline, "no-newline", false, "no newline after the value")
	f.fs.StringVar(&out, "o", "", "write the value to `FILE`")
	f.fs.StringVar(&out, "out-file", "", "write the value to `FILE`")
	f.fs.Var(&mode, "file-mode", "the mode of FILE")
	// op asks before replacing FILE unless -f; rssh never asks: the file
	// is replaced atomically.
	f.fs.BoolVar(&force, "f", false, "")
	f.fs.BoolVar(&force, "force", false, "")
	pos, err := f.parse(args, false)
	if err != nil {
		return f.fail(std, err)
	}
	if len(pos) != 1 {
		return f.fail(std, f.usageErr("want one secret reference, got %d arguments", len(pos)))
	}
	ref := pos[0]
	if _, err := secret.ParseRef(ref); err != nil {
		return f.fail(std, err)
	}
	b, err := f.open(getenv)
	if err != nil {
		return f.fail(std, err)
	}
	vals, err := b.ResolveAll(context.Background(), []string{ref})
	if err != nil {
		return f.fail(std, err)
	}
	v := vals[0]
	data := make([]byte, len(v), len(v)+1)
	copy(data, v)
	clear(v)
	if !noNewline {
		data = append(data, '\n')
	}
	defer clear(data)
	if out != "" {
		if err := secret.WriteFileAtomic(out, data, os.FileMode(mode)); err != nil {
			return f.fail(std, err)
		}
		return 0
	}
	if _, err := std.out.Write(data); err != nil {
		return f.fail(std, err)
	}
	return 0
}
