// Package shellinit is `rssh shell-init`: the table of tools whose secrets
// come from 1Password (tool → variables → op:// references), the shell
// functions that resolve a tool's variables once per shell on its first
// call, the wrapper scripts that do the same for scripts, and the quoting
// that hands values to bash, zsh and fish byte for byte with no shell
// evaluation of their contents. It does not resolve references itself: the
// caller passes a secret.Backend.
package shellinit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// EnvVar is the session's environment (development, staging, …), which
// rssh pushes with the token; references name it as ${RSSH_ENV}.
const EnvVar = "RSSH_ENV"

// Var is one variable of a tool: Name=Ref, where Ref may still hold
// ${RSSH_ENV}. Where says where it was defined ("built-in" or FILE:LINE).
type Var struct {
	Name, Ref, Where string
}

// Tool is a command whose variables are resolved on its first call.
type Tool struct {
	Name string
	Vars []Var
}

// Table is the tools in the order they were first defined.
type Table struct {
	Tools []Tool
}

// Defaults is the built-in table, in the design's vault convention: one
// vault per environment, "SA - <env>".
const Defaults = `# rssh shell-init: built-in tools (override a tool by naming it in your own file)
gh GH_TOKEN=op://SA - ${RSSH_ENV}/GitHub CLI Token/credential
aws AWS_ACCESS_KEY_ID=op://SA - ${RSSH_ENV}/AWS/access key id
aws AWS_SECRET_ACCESS_KEY=op://SA - ${RSSH_ENV}/AWS/secret access key
gcloud CLOUDSDK_AUTH_ACCESS_TOKEN=op://SA - ${RSSH_ENV}/Google Cloud/access token
`

// Bounds on a tools file: it is a small hand-written file.
const (
	maxFileBytes = 1 << 20
	maxLineBytes = 4096
	maxNameBytes = 64
)

var (
	toolRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`) })
	varRe  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
)

// Names a wrapper must not take: the words the wrappers themselves use, and
// rssh.
var reservedTools = map[string]bool{
	"rssh": true, "command": true, "builtin": true, "exec": true, "eval": true, "set": true,
	"export": true, "source": true, "local": true, "return": true, "unset": true, "string": true,
	"type": true, "test": true, "printf": true, "echo": true, "read": true, "function": true,
	"functions": true, "and": true, "or": true, "not": true, "begin": true, "end": true,
	"if": true, "then": true, "else": true, "fi": true, "for": true, "while": true, "do": true,
	"done": true, "case": true, "esac": true, "contains": true, "sh": true,
}

// Variables a wrapper must not set: they would change how the shell, the
// wrapper or rssh itself works, not what the tool sees.
var reservedVars = map[string]bool{
	"PATH": true, "IFS": true, "HOME": true, "SHELL": true, "PWD": true, "OLDPWD": true,
	"ENV": true, "BASH_ENV": true, "CDPATH": true, "LD_PRELOAD": true, "LD_LIBRARY_PATH": true,
	"OP_SERVICE_ACCOUNT_TOKEN": true, EnvVar: true, "RSSH_SECRET_BACKEND": true,
	"CREDENTIALS_DIRECTORY": true, "status": true, "argv": true, "SHLVL": true, "_": true,
}

// Parse reads a tools file: one variable a line, "TOOL VAR=op://…", blank
// lines and lines starting with # ignored. A reference may hold spaces and
// ${RSSH_ENV}; surrounding blanks are trimmed. file names the source in
// errors (FILE:LINE: what is wrong).
func Parse(r io.Reader, file string) (*Table, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: longer than %d bytes", file, maxFileBytes)
	}
	t := &Table{}
	seen := map[[2]string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFileBytes+1)
	n := 0
	for sc.Scan() {
		n++
		where := fmt.Sprintf("%s:%d", file, n)
		line := sc.Text()
		if len(line) > maxLineBytes {
			return nil, fmt.Errorf("%s: line longer than %d bytes", where, maxLineBytes)
		}
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		i := strings.IndexAny(trimmed, " \t")
		if i < 0 {
			return nil, fmt.Errorf("%s: want TOOL VAR=op://vault/item/field, got %q", where, trimmed)
		}
		tool, rest := trimmed[:i], trimmed[i+1:]
		if err := checkTool(tool); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		name, ref, ok := strings.Cut(strings.TrimSpace(rest), "=")
		if !ok {
			return nil, fmt.Errorf("%s: want VAR=op://vault/item/field after %s, got %q", where, tool, strings.TrimSpace(rest))
		}
		name = strings.TrimSpace(name)
		if err := checkVar(name); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		ref = strings.TrimSpace(ref)
		if err := CheckRef(ref); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, name, err)
		}
		key := [2]string{tool, name}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s: %s %s is already set at %s", where, tool, name, prev)
		}
		seen[key] = where
		t.add(tool, Var{Name: name, Ref: ref, Where: where})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", file, n+1, err)
	}
	return t, nil
}

func (t *Table) add(tool string, v Var) {
	for i := range t.Tools {
		if t.Tools[i].Name == tool {
			t.Tools[i].Vars = append(t.Tools[i].Vars, v)
			return
		}
	}
	t.Tools = append(t.Tools, Tool{Name: tool, Vars: []Var{v}})
}

// Tool returns the named tool.
func (t *Table) Tool(name string) (Tool, bool) {
	for _, tl := range t.Tools {
		if tl.Name == name {
			return tl, true
		}
	}
	return Tool{}, false
}

// Over returns t with each tool that over names replaced by over's
// definition (whole: a file's gh lines replace every built-in gh line),
// and over's other tools added after t's.
func (t *Table) Over(over *Table) *Table {
	out := &Table{}
	for _, tl := range t.Tools {
		if o, ok := over.Tool(tl.Name); ok {
			tl = o
		}
		out.Tools = append(out.Tools, tl)
	}
	for _, o := range over.Tools {
		if _, ok := t.Tool(o.Name); !ok {
			out.Tools = append(out.Tools, o)
		}
	}
	return out
}

func checkTool(s string) error {
	switch {
	case len(s) > maxNameBytes:
		return fmt.Errorf("tool name longer than %d bytes", maxNameBytes)
	case !toolRe().MatchString(s):
		return fmt.Errorf("tool name %q: want letters, digits and _ . + - (not first)", s)
	case reservedTools[s]:
		return fmt.Errorf("tool name %q: the wrappers use that word themselves", s)
	}
	return nil
}

func checkVar(s string) error {
	switch {
	case len(s) > maxNameBytes:
		return fmt.Errorf("variable name longer than %d bytes", maxNameBytes)
	case !varRe().MatchString(s):
		return fmt.Errorf("variable name %q: want letters, digits and _, not starting with a digit", s)
	case reservedVars[s] || strings.HasPrefix(s, "__rssh"):
		return fmt.Errorf("variable %s: a wrapper may not set it", s)
	}
	return nil
}

// CheckRef checks the shape of a reference as written in a tools file:
// op://vault/item/[section/]field[?attribute=…], no control characters,
// and no ${…} other than ${RSSH_ENV}.
func CheckRef(ref string) error {
	rest, ok := strings.CutPrefix(ref, "op://")
	if !ok {
		return fmt.Errorf("reference %q does not start with op://", ref)
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("reference has a control character")
		}
	}
	s := ref
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 || s[i+2:i+j] != EnvVar {
			return fmt.Errorf("reference %q: only ${%s} is expanded", ref, EnvVar)
		}
		s = s[i+j+1:]
	}
	path, _, _ := strings.Cut(rest, "?")
	parts := strings.Split(path, "/")
	if len(parts) < 3 || len(parts) > 4 {
		return fmt.Errorf("reference %q: want op://vault/item/[section/]field", ref)
	}
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("reference %q has an empty part", ref)
		}
	}
	return nil
}

// Expand replaces ${RSSH_ENV} in ref with env.
func Expand(ref, env string) string {
	return strings.ReplaceAll(ref, "${"+EnvVar+"}", env)
}

// NeedsEnv reports whether ref names ${RSSH_ENV}.
func NeedsEnv(ref string) bool { return strings.Contains(ref, "${"+EnvVar+"}") }

// CheckEnv checks an RSSH_ENV value can stand in a reference.
func CheckEnv(env string) error {
	if env == "" {
		return errors.New("RSSH_ENV is not set")
	}
	if strings.ContainsAny(env, "/?{}$") || strings.ContainsFunc(env, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("RSSH_ENV %q cannot stand in an op:// reference", env)
	}
	return nil
}

// File is where the user's tools file lives: $XDG_CONFIG_HOME/rssh/tools,
// else ~/.config/rssh/tools.
func File(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "rssh", "tools")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "rssh", "tools")
	}
	return ""
}

// Load is the built-in table with the user's file (if it exists) over it.
func Load(getenv func(string) string) (*Table, error) {
	def, err := Parse(strings.NewReader(Defaults), "built-in")
	if err != nil {
		return nil, err
	}
	for i := range def.Tools {
		for j := range def.Tools[i].Vars {
			def.Tools[i].Vars[j].Where = "built-in"
		}
	}
	path := File(getenv)
	if path == "" {
		return def, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return def, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	user, err := Parse(f, path)
	if err != nil {
		return nil, err
	}
	return def.Over(user), nil
}
