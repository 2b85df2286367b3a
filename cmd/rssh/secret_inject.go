package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rssh/rssh/secret"
)

const secretInjectUsage = "rssh secret inject [-i TEMPLATE] [-o OUT [--file-mode 0600]] [--token-file FILE] [--backend op|sdk|forward|auto]"

// runSecretInject is `rssh secret inject`, as `op inject`: the template
// (-i, else stdin) with every reference replaced by its value's bytes, on
// stdout or in OUT (-o, replaced atomically with --file-mode, default
// 0600). All references resolve in one batch; if any does not, nothing is
// written and OUT keeps what it held.
func runSecretInject(args []string, std stdio, getenv func(string) string) int {
	f := newSecretFlags("inject", secretInjectUsage)
	var in, out string
	var force bool
	mode := fileModeFlag(0o600)
	f.fs.StringVar(&in, "i", "", "read the template from `FILE`")
	f.fs.StringVar(&in, "in-file", "", "read the template from `FILE`")
	f.fs.StringVar(&out, "o", "", "write the result to `FILE`")
	f.fs.StringVar(&out, "out-file", "", "write the result to `FILE`")
	f.fs.Var(&mode, "file-mode", "the mode of OUT")
	f.fs.BoolVar(&force, "f", false, "")
	f.fs.BoolVar(&force, "force", false, "")
	pos, err := f.parse(args, false)
	if err != nil {
		return f.fail(std, err)
	}
	if len(pos) != 0 {
		return f.fail(std, f.usageErr("unexpected argument %q: the template is -i FILE or stdin", pos[0]))
	}
	src, err := readTemplate(in, std.in)
	if err != nil {
		return f.fail(std, err)
	}
	tpl, err := secret.ParseTemplate(src, templateLookup(getenv))
	if err != nil {
		if in != "" {
			err = &wrapped{prefix: in, err: err}
		}
		return f.fail(std, err)
	}
	var b secret.Backend
	if len(tpl.Refs()) > 0 {
		if b, err = f.open(getenv); err != nil {
			return f.fail(std, err)
		}
	}
	res, err := secret.Inject(context.Background(), b, tpl)
	if err != nil {
		return f.fail(std, err)
	}
	defer clear(res)
	if out != "" {
		if err := secret.WriteFileAtomic(out, res, os.FileMode(mode)); err != nil {
			return f.fail(std, err)
		}
		return 0
	}
	if _, err := std.out.Write(res); err != nil {
		return f.fail(std, err)
	}
	return 0
}

// readTemplate reads the template from path, or r when path is "" or "-",
// refusing more than secret.MaxTemplate bytes.
func readTemplate(path string, r io.Reader) ([]byte, error) {
	if path != "" && path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		r = file
	}
	b, err := io.ReadAll(io.LimitReader(r, secret.MaxTemplate+1))
	if err != nil {
		return nil, fmt.Errorf("reading the template: %w", err)
	}
	if len(b) > secret.MaxTemplate {
		return nil, fmt.Errorf("the template is longer than %d bytes", secret.MaxTemplate)
	}
	return b, nil
}

// templateLookup finds a template variable: by its exact name, else, as op
// inject's names are case-insensitive, by any spelling of it.
func templateLookup(getenv func(string) string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v := getenv(name); v != "" {
			return v, true
		}
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			if strings.EqualFold(k, name) {
				return v, true
			}
		}
		return "", false
	}
}
