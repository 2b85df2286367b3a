package session

import (
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/rssh/rssh/config"
)

// runLocalCommand runs LocalCommand on this machine, as ssh does once the
// connection is up and before the session starts: only with
// PermitLocalCommand yes, through $SHELL -c (/bin/sh without one), with
// rssh's stdin, stdout and stderr (errw), and rssh waits for it. Its exit
// status is not rssh's business (ssh ignores it too); a command that cannot
// run is logged as ssh logs it. The environment is rssh's own, less any
// token variable.
func runLocalCommand(cfg *config.Config, d Deps, errw io.Writer) error {
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
	shell := d.getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	log := d.log()
	log.Debug("executing local command", "shell", shell, "command", line)
	cmd := exec.Command(shell, "-c", line)
	if f, ok := d.Stdin.(*os.File); ok {
		cmd.Stdin = f
	}
	cmd.Stdout, cmd.Stderr = d.Stdout, errw
	cmd.Env = []string{}
	for _, kv := range d.Environ {
		if name, _, _ := strings.Cut(kv, "="); ownVar(name) {
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
