package shellinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rssh/rssh/secret"
)

// Missing is the tool's variables that are empty in the environment: the
// ones a call must resolve. A variable already set (by an earlier call in
// this shell, a parent shell, or the user) is left alone.
func Missing(tl Tool, getenv func(string) string) []Var {
	var out []Var
	for _, v := range tl.Vars {
		if getenv(v.Name) == "" {
			out = append(out, v)
		}
	}
	return out
}

// EnvError is a reference that needs ${RSSH_ENV} in a session without a
// usable one.
type EnvError struct {
	Tool, Var string
	Err       error
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Tool, e.Var, e.Err)
}

func (e *EnvError) HintText() string {
	return "connect with rssh to a host whose ssh_config block has SetEnv RSSH_ENV=<env>, or export RSSH_ENV"
}

// Resolve resolves vars in one batch through the backend open returns,
// and returns them in order. The references are checked before the
// backend is opened: a session without RSSH_ENV starts nothing.
func Resolve(ctx context.Context, open func() (secret.Backend, error), tool string, vars []Var, getenv func(string) string) ([]Assignment, error) {
	if len(vars) == 0 {
		return nil, nil
	}
	env := getenv(EnvVar)
	refs := make([]string, len(vars))
	for i, v := range vars {
		if NeedsEnv(v.Ref) {
			if err := CheckEnv(env); err != nil {
				return nil, &EnvError{Tool: tool, Var: v.Name, Err: err}
			}
		}
		refs[i] = Expand(v.Ref, env)
	}
	b, err := open()
	if err != nil {
		return nil, err
	}
	vals, err := b.ResolveAll(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	if len(vals) != len(refs) {
		return nil, fmt.Errorf("%s: the %s backend answered %d values for %d references", tool, b.Name(), len(vals), len(refs))
	}
	out := make([]Assignment, len(vars))
	for i, v := range vars {
		if bytes.IndexByte(vals[i], 0) >= 0 {
			return nil, fmt.Errorf("%s: %s: the value has a NUL byte, which no environment variable can hold", tool, v.Name)
		}
		out[i] = Assignment{Name: v.Name, Value: vals[i]}
	}
	return out, nil
}

// ErrNotFound is a tool that is not on PATH (other than as a wrapper).
var ErrNotFound = errors.New("command not found")

// LookPath finds the real tool on path (a PATH value), skipping rssh's
// wrapper scripts, so a wrapper never runs itself.
func LookPath(tool, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, tool)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		if isWrapperFile(p) {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%s: %w", tool, ErrNotFound)
}

func isWrapperFile(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	return IsWrapper(head[:n])
}

// InstallWrappers makes dir hold exactly one wrapper script per tool of t
// (mode 0755; a file is rewritten only when it differs), and removes
// wrappers of tools no longer in t. Files that are not rssh wrappers are
// never touched.
func InstallWrappers(dir, rssh string, t *Table) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, tl := range t.Tools {
		want[tl.Name] = true
		p := filepath.Join(dir, tl.Name)
		body := Wrapper(rssh, tl.Name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, body) {
			continue
		} else if err == nil && !IsWrapper(old) {
			return fmt.Errorf("%s exists and is not an rssh wrapper", p)
		}
		if err := secret.WriteFileAtomic(p, body, 0o755); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if want[e.Name()] || strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if isWrapperFile(p) {
			os.Remove(p)
		}
	}
	return nil
}

// BinDir is the default wrapper directory: $XDG_DATA_HOME/rssh/bin, else
// ~/.local/share/rssh/bin. The wrappers hold no secret, only the tool's
// name and rssh's path.
func BinDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "rssh", "bin")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "rssh", "bin")
	}
	return ""
}
