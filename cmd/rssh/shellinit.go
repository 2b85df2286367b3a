package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/rssh/rssh/secret"
	"github.com/rssh/rssh/secret/shellinit"
	"github.com/rssh/rssh/sshproxy"
)

const shellInitUsage = "rssh shell-init [--bin-dir DIR | --no-wrappers] bash | zsh | fish"

// exitNotFound is what a shell answers for a command it cannot find; a
// wrapper standing in for a missing tool answers the same.
const exitNotFound = 127

// shellInitBackend is the backend the wrappers resolve with: the same one
// `rssh secret read` picks (RSSH_SECRET_BACKEND, the token from
// $CREDENTIALS_DIRECTORY or OP_SERVICE_ACCOUNT_TOKEN). A test seam.
var shellInitBackend = func(getenv func(string) string) (secret.Backend, error) {
	return openSecretBackend("", "", getenv)
}

// shellInitSelf is the rssh the functions and wrapper scripts run (a test
// seam: the test binary stands in for rssh under a symlink).
var shellInitSelf = os.Executable

// shellInitExec replaces the process with the real tool (a test seam).
var shellInitExec = syscall.Exec

// runShellInit is `rssh shell-init bash|zsh|fish`, and the two hidden modes
// its functions and wrapper scripts call: --export SHELL TOOL (print the
// tool's missing variables as quoted assignments) and --exec TOOL ARGS…
// (resolve them and exec the real tool: a script's way).
func runShellInit(args []string, std stdio, getenv func(string) string) int {
	if len(args) > 0 {
		switch args[0] {
		case "--export":
			return runShellExport(args[1:], std, getenv)
		case "--exec":
			return runShellExec(args[1:], std, getenv)
		case "--list":
			return runShellList(args[1:], std, getenv)
		case "-h", "--help":
			fmt.Fprintln(std.out, shellInitUsage)
			return 0
		}
	}
	binDir := shellinit.BinDir(getenv)
	var shell string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--no-wrappers":
			binDir = ""
		case a == "--bin-dir" && i+1 < len(args):
			i++
			binDir = args[i]
		case strings.HasPrefix(a, "--bin-dir="):
			binDir = strings.TrimPrefix(a, "--bin-dir=")
		case slices.Contains(shellinit.Shells, a) && shell == "":
			shell = a
		default:
			return shellInitFail(std, fmt.Errorf("shell-init: unexpected argument %q", a))
		}
	}
	if shell == "" {
		return shellInitFail(std, errors.New("shell-init: which shell? bash, zsh or fish"))
	}
	if binDir != "" && !filepath.IsAbs(binDir) {
		return shellInitFail(std, fmt.Errorf("shell-init: --bin-dir %q is not an absolute path", binDir))
	}
	t, err := shellinit.Load(getenv)
	if err != nil {
		fail(std.err, fmt.Errorf("shell-init: %w", err))
		return sshproxy.ExitFailure
	}
	self, err := shellInitSelf()
	if err != nil {
		fail(std.err, fmt.Errorf("shell-init: where is rssh: %w", err))
		return sshproxy.ExitFailure
	}
	if binDir != "" {
		if err := shellinit.InstallWrappers(binDir, self, t); err != nil {
			// The functions still work in this shell; only scripts miss out.
			fmt.Fprintf(std.err, "rssh: shell-init: wrapper scripts not installed: %v\n", err)
			binDir = ""
		}
	}
	code, err := shellinit.Init(shell, t, self, binDir)
	if err != nil {
		return shellInitFail(std, err)
	}
	fmt.Fprint(std.out, code)
	return 0
}

func shellInitFail(std stdio, err error) int {
	fail(std.err, &hintError{err: err, hint: shellInitUsage})
	return sshproxy.ExitFailure
}

// runShellList prints the table in effect, each line with where it is from.
func runShellList(args []string, std stdio, getenv func(string) string) int {
	if len(args) != 0 {
		return shellInitFail(std, errors.New("shell-init --list takes no arguments"))
	}
	t, err := shellinit.Load(getenv)
	if err != nil {
		fail(std.err, fmt.Errorf("shell-init: %w", err))
		return sshproxy.ExitFailure
	}
	for _, tl := range t.Tools {
		for _, v := range tl.Vars {
			fmt.Fprintf(std.out, "%s %s=%s\t# %s\n", tl.Name, v.Name, v.Ref, v.Where)
		}
	}
	return 0
}

// resolveTool loads the table and resolves tool's variables that are not
// set yet, in one batch. It checks the real tool exists first, so a
// missing tool costs no secret.
func resolveTool(tool string, getenv func(string) string) (string, []shellinit.Assignment, int, error) {
	t, err := shellinit.Load(getenv)
	if err != nil {
		return "", nil, sshproxy.ExitFailure, fmt.Errorf("shell-init: %w", err)
	}
	tl, ok := t.Tool(tool)
	if !ok {
		return "", nil, sshproxy.ExitFailure, &hintError{
			err:  fmt.Errorf("shell-init: %s is not in the tools table", tool),
			hint: "add a line `" + tool + " VAR=op://vault/item/field` to " + shellinit.File(getenv),
		}
	}
	real, err := shellinit.LookPath(tool, getenv("PATH"))
	if err != nil {
		return "", nil, exitNotFound, err
	}
	missing := shellinit.Missing(tl, getenv)
	if len(missing) == 0 {
		return real, nil, 0, nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	as, err := shellinit.Resolve(ctx, func() (secret.Backend, error) { return shellInitBackend(getenv) }, tool, missing, getenv)
	if err != nil {
		return "", nil, sshproxy.ExitFailure, err
	}
	return real, as, 0, nil
}

// runShellExport is `rssh shell-init --export SHELL TOOL`: the tool's
// missing variables as assignments quoted for SHELL, nothing else on
// stdout; on any failure nothing at all on stdout.
func runShellExport(args []string, std stdio, getenv func(string) string) int {
	if len(args) != 2 || !slices.Contains(shellinit.Shells, args[0]) {
		return shellInitFail(std, errors.New("shell-init --export SHELL TOOL"))
	}
	_, as, code, err := resolveTool(args[1], getenv)
	if err != nil {
		fail(std.err, err)
		return code
	}
	out, err := shellinit.Exports(args[0], as)
	if err != nil {
		fail(std.err, fmt.Errorf("shell-init: %w", err))
		return sshproxy.ExitFailure
	}
	fmt.Fprint(std.out, out)
	return 0
}

// runShellExec is `rssh shell-init --exec TOOL ARGS…`, what a wrapper
// script runs: the tool's missing variables resolved in one batch, then the
// real tool exec'd in rssh's place with them (its exit status and signals
// are the tool's own) and without the Service Account token.
func runShellExec(args []string, std stdio, getenv func(string) string) int {
	if len(args) == 0 {
		return shellInitFail(std, errors.New("shell-init --exec TOOL [ARGS…]"))
	}
	tool := args[0]
	real, as, code, err := resolveTool(tool, getenv)
	if err != nil {
		fail(std.err, err)
		return code
	}
	env := execEnv(os.Environ(), as)
	argv := append([]string{tool}, args[1:]...)
	err = shellInitExec(real, argv, env)
	fail(std.err, fmt.Errorf("shell-init: exec %s: %w", real, err))
	return sshproxy.ExitFailure
}

// execEnv is environ with as set and the token removed: the tool gets its
// own variables, not the key to every other secret.
func execEnv(environ []string, as []shellinit.Assignment) []string {
	set := map[string]bool{"OP_SERVICE_ACCOUNT_TOKEN": true}
	for _, a := range as {
		set[a.Name] = true
	}
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !set[k] {
			env = append(env, kv)
		}
	}
	for _, a := range as {
		env = append(env, a.Name+"="+string(a.Value))
	}
	return env
}
