package main

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/rssh/rssh/config"
)

// runLocalCommand runs LocalCommand on this machine, as ssh does once the
// connection is up and before the session starts: only with
// PermitLocalCommand yes, through $SHELL -c (/bin/sh without one), with
// rssh's stdin, stdout and stderr, and rssh waits for it. Its exit status
// is not rssh's business (ssh ignores it too); a command that cannot run
// is logged as ssh logs it. The environment is rssh's own, less any token
// variable.
func runLocalCommand(cfg *config.Config, in io.Reader, out, errw io.Writer, getenv func(string) string, log *slog.Logger) error {
	if !cfg.PermitLocalCommand || cfg.LocalCommand == "" {
		return nil
	}
	line, err := cfg.ExpandLocalCommand()
	if err != nil {
		return err
	}
	if line == "" {
		return nil
	}
	shell := getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	log.Debug("executing local command", "shell", shell, "command", line)
	cmd := exec.Command(shell, "-c", line)
	if f, ok := in.(*os.File); ok {
		cmd.Stdin = f
	}
	cmd.Stdout, cmd.Stderr = out, errw
	cmd.Env = []string{}
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case tokenVar, envVar, lcTokenVar, lcEnvVar:
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if err := cmd.Run(); err != nil {
		if _, exited := err.(*exec.ExitError); !exited {
			log.Error("Couldn't execute " + shell + ` -c "` + line + `": ` + err.Error())
		}
	}
	return nil
}
