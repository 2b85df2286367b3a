package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rssh/rssh/secret/unit"
	"github.com/rssh/rssh/sshproxy"
)

const secretUnitUsage = "rssh secret systemd-unit NAME --token-credential PATH [--before UNIT]... [--out FILE] [--template FILE=SOURCE]... [--owner USER[:GROUP]] [--dynamic-user] [--encrypted] [--attempts N] [--restart-sec S] [--timeout-start-sec S] [--file-mode MODE] [--template-dir DIR] [--rssh PATH] [--chown-program PATH] [--dir DIR] KEY=op://vault/item/field..."

// runSecretUnit is `rssh secret systemd-unit`: the units the NixOS module
// makes, for hosts without NixOS. They go to stdout, each after a
// "# PATH" line as `systemctl cat` shows them, or with --dir into that
// directory (/etc/systemd/system).
func runSecretUnit(args []string, std stdio, getenv func(string) string) int {
	s, dir, err := parseSecretUnit(args)
	if err != nil {
		fail(std.err, &hintError{err: fmt.Errorf("secret systemd-unit: %w", err), hint: secretUnitUsage})
		return sshproxy.ExitFailure
	}
	if s.RSSH == "" {
		if s.RSSH, err = os.Executable(); err != nil {
			fail(std.err, fmt.Errorf("secret systemd-unit: where is rssh: %w", err))
			return sshproxy.ExitFailure
		}
	}
	files, err := s.Files()
	if err != nil {
		fail(std.err, &hintError{err: fmt.Errorf("secret systemd-unit: %w", err), hint: secretUnitUsage})
		return sshproxy.ExitFailure
	}
	header := "# Written by `rssh secret systemd-unit " + s.Name + "`: change its flags rather than this file.\n"
	if dir == "" {
		for i, f := range files {
			if i > 0 {
				fmt.Fprintln(std.out)
			}
			fmt.Fprintf(std.out, "# %s\n%s", f.Path, f.Text(header))
		}
		return 0
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fail(std.err, fmt.Errorf("secret systemd-unit: %w", err))
			return sshproxy.ExitFailure
		}
		// Units hold references, never values: readable like any unit.
		if err := os.WriteFile(p, []byte(f.Text(header)), 0o644); err != nil {
			fail(std.err, fmt.Errorf("secret systemd-unit: %w", err))
			return sshproxy.ExitFailure
		}
		fmt.Fprintln(std.out, p)
	}
	return 0
}

func parseSecretUnit(args []string) (*unit.Spec, string, error) {
	s := &unit.Spec{}
	var dir string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") {
			if s.Name == "" && !hasVal {
				s.Name = a
				continue
			}
			if !hasVal {
				return nil, "", fmt.Errorf("unexpected argument %q: want KEY=op://…", a)
			}
			s.Secrets = append(s.Secrets, unit.Secret{Key: name, Ref: val})
			continue
		}
		switch name {
		case "--dynamic-user", "--encrypted":
			if hasVal {
				return nil, "", fmt.Errorf("%s takes no value", name)
			}
			if name == "--dynamic-user" {
				s.DynamicUser = true
			} else {
				s.Encrypted = true
			}
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, "", fmt.Errorf("%s needs a value", a)
			}
			i++
			val = args[i]
		}
		num := func() (int, error) {
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s %q: want a positive number", name, val)
			}
			return n, nil
		}
		var err error
		switch name {
		case "--token-credential":
			s.TokenCredential = val
		case "--before":
			s.Before = append(s.Before, val)
		case "--out":
			s.Out = val
		case "--template-dir":
			s.TemplateDir = val
		case "--template":
			f, src, ok := strings.Cut(val, "=")
			if !ok {
				return nil, "", fmt.Errorf("--template %q: want FILE=SOURCE", val)
			}
			s.Templates = append(s.Templates, unit.Template{Name: f, Source: src})
		case "--owner":
			s.Owner = val
		case "--attempts":
			s.Attempts, err = num()
		case "--restart-sec":
			s.RestartSec, err = num()
		case "--timeout-start-sec":
			s.TimeoutStartSec, err = num()
		case "--file-mode":
			s.FileMode = val
		case "--rssh":
			s.RSSH = val
		case "--chown-program":
			s.Chown = val
		case "--dir":
			dir = val
		default:
			return nil, "", fmt.Errorf("unknown option %s", name)
		}
		if err != nil {
			return nil, "", err
		}
	}
	if s.Name == "" {
		return nil, "", errors.New("which name? the units are rssh-secrets-NAME.service")
	}
	unit.SortSecrets(s.Secrets)
	slices.SortFunc(s.Templates, func(a, b unit.Template) int { return strings.Compare(a.Name, b.Name) })
	return s, dir, nil
}
