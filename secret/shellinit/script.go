package shellinit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Shells are the shells shell-init knows, as its argument spells them.
var Shells = []string{"bash", "zsh", "fish"}

// Quote returns value as one word of shell's syntax that the shell reads
// back as exactly value's bytes with no expansion of any kind: single
// quotes (bash, zsh: each ' closed, escaped and reopened; fish: \ and '
// escaped). A NUL byte cannot
// be in a shell variable, so it is an error.
func Quote(shell string, value []byte) (string, error) {
	if bytes.IndexByte(value, 0) >= 0 {
		return "", errors.New("the value has a NUL byte, which no shell variable can hold")
	}
	s := string(value)
	switch shell {
	case "bash", "zsh", "sh":
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
	case "fish":
		s = strings.ReplaceAll(s, `\`, `\\`)
		return "'" + strings.ReplaceAll(s, "'", `\'`) + "'", nil
	}
	return "", fmt.Errorf("unknown shell %q", shell)
}

func mustQuote(shell, s string) string {
	q, err := Quote(shell, []byte(s))
	if err != nil {
		panic(err) // paths and names: never NUL
	}
	return q
}

// Assignment is one resolved variable.
type Assignment struct {
	Name  string
	Value []byte
}

// Exports is shell code that exports each assignment into the shell that
// evaluates it, values quoted by Quote.
func Exports(shell string, as []Assignment) (string, error) {
	var b strings.Builder
	for _, a := range as {
		q, err := Quote(shell, a.Value)
		if err != nil {
			return "", fmt.Errorf("%s: %w", a.Name, err)
		}
		if shell == "fish" {
			fmt.Fprintf(&b, "set -gx %s %s\n", a.Name, q)
		} else {
			fmt.Fprintf(&b, "export %s=%s\n", a.Name, q)
		}
	}
	return b.String(), nil
}

// Init is what `rssh shell-init SHELL` prints: for each tool a function
// that, when any of the tool's variables is empty, has rssh resolve the
// missing ones in one batch (rssh shell-init --export), evaluates the
// quoted assignments rssh printed, and runs the real tool; later calls find
// the variables set and go straight to the tool. binDir, when not empty,
// goes first on PATH so scripts find the wrapper scripts too.
func Init(shell string, t *Table, rssh, binDir string) (string, error) {
	var b strings.Builder
	r := mustQuote(shell, rssh)
	switch shell {
	case "bash", "zsh":
		fmt.Fprintf(&b, "# rssh shell-init %s: tools whose secrets rssh resolves from 1Password on first use\n", shell)
		b.WriteString("# (eval \"$(rssh shell-init " + shell + ")\" in your rc file; the tools are in ~/.config/rssh/tools)\n")
		fmt.Fprintf(&b, "function __rssh_load {\n"+
			"  local __rssh_out\n"+
			"  __rssh_out=$(%s shell-init --export %s \"$1\") || return\n"+
			"  eval \"$__rssh_out\"\n"+
			"}\n", r, shell)
		for _, tl := range t.Tools {
			var conds []string
			for _, v := range tl.Vars {
				conds = append(conds, fmt.Sprintf(`[ -z "${%s-}" ]`, v.Name))
			}
			fmt.Fprintf(&b, "function %s {\n"+
				"  if %s; then __rssh_load %s || return; fi\n"+
				"  command %s \"$@\"\n"+
				"}\n", tl.Name, strings.Join(conds, " || "), tl.Name, tl.Name)
		}
		if binDir != "" {
			d := mustQuote(shell, binDir)
			fmt.Fprintf(&b, "case \":$PATH:\" in *:%s:*) ;; *) PATH=%s:\"$PATH\"; export PATH ;; esac\n", d, d)
		}
	case "fish":
		b.WriteString("# rssh shell-init fish: tools whose secrets rssh resolves from 1Password on first use\n")
		b.WriteString("# (rssh shell-init fish | source in config.fish; the tools are in ~/.config/rssh/tools)\n")
		fmt.Fprintf(&b, "function __rssh_load\n"+
			"    set -l __rssh_out (%s shell-init --export fish $argv[1] | string collect)\n"+
			"    set -l __rssh_st $pipestatus[1]\n"+
			"    test $__rssh_st -eq 0; or return $__rssh_st\n"+
			"    eval $__rssh_out\n"+
			"end\n", r)
		for _, tl := range t.Tools {
			var conds []string
			for _, v := range tl.Vars {
				conds = append(conds, fmt.Sprintf(`test -z "$%s"`, v.Name))
			}
			fmt.Fprintf(&b, "function %s\n"+
				"    if %s\n"+
				"        __rssh_load %s; or return\n"+
				"    end\n"+
				"    command %s $argv\n"+
				"end\n", tl.Name, strings.Join(conds, "; or "), tl.Name, tl.Name)
		}
		if binDir != "" {
			d := mustQuote(shell, binDir)
			fmt.Fprintf(&b, "contains -- %s $PATH; or set -gx PATH %s $PATH\n", d, d)
		}
	default:
		return "", fmt.Errorf("unknown shell %q", shell)
	}
	return b.String(), nil
}

// WrapperMark is in the second line of every wrapper script, so rssh can
// tell its wrappers from the real tools on PATH.
const WrapperMark = "# rssh tool wrapper"

// Wrapper is the script for tool in the wrapper directory: it has rssh
// resolve the tool's missing variables and exec the real tool in its place
// (what `rssh secret run` does for an env file, for one tool).
func Wrapper(rssh, tool string) []byte {
	return []byte("#!/bin/sh\n" + WrapperMark + " for " + tool + ": written by `rssh shell-init`; the tools are in ~/.config/rssh/tools\n" +
		"exec " + mustQuote("sh", rssh) + " shell-init --exec " + tool + " \"$@\"\n")
}

// IsWrapper reports whether head (a file's first bytes) is a wrapper script.
func IsWrapper(head []byte) bool {
	first, rest, _ := bytes.Cut(head, []byte("\n"))
	return string(first) == "#!/bin/sh" && bytes.HasPrefix(rest, []byte(WrapperMark+" "))
}
