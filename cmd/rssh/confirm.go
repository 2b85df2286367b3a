package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/term"

	"github.com/rssh/rssh/sshproxy"
)

// confirmer asks a yes/no question the way ssh asks its confirmations
// (read_passphrase with RP_ASK_PERMISSION): through SSH_ASKPASS when
// SSH_ASKPASS_REQUIRE is "force", or when it is set, a display is there
// and the terminal is busy; else on /dev/tty, but only when stdin is not
// that terminal — a session reading the terminal would take the answer.
func confirmer(getenv func(string) string, stdin *os.File) func(string) (bool, error) {
	return func(question string) (bool, error) {
		askpass := getenv("SSH_ASKPASS")
		require := getenv("SSH_ASKPASS_REQUIRE")
		display := getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
		stdinTTY := stdin != nil && term.IsTerminal(int(stdin.Fd()))
		if askpass != "" && require != "never" && (require == "force" || display) {
			cmd := exec.Command(askpass, question)
			cmd.Env = append(os.Environ(), "SSH_ASKPASS_PROMPT=confirm")
			err := cmd.Run()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("askpass %s: %w", askpass, err)
			}
			return true, nil
		}
		if stdinTTY {
			return false, errors.New("the terminal is the session's: set SSH_ASKPASS (with SSH_ASKPASS_REQUIRE=force without a display) to be asked")
		}
		line, err := sshproxy.TTYPrompter{}.Confirm(question + " (yes/no) ")
		if err != nil {
			return false, errors.New("no terminal and no SSH_ASKPASS to ask on")
		}
		return strings.EqualFold(strings.TrimSpace(line), "yes"), nil
	}
}
