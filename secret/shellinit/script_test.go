package shellinit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// hardValues are values a shell would act on if it evaluated them, and
// bytes that trip quoting: every byte but NUL, invalid UTF-8, quotes and
// backslashes in every arrangement.
func hardValues(mark string) [][]byte {
	all := make([]byte, 0, 255)
	for b := 1; b < 256; b++ {
		all = append(all, byte(b))
	}
	return [][]byte{
		[]byte("a$(touch " + mark + ")b"),
		[]byte("`touch " + mark + "`"),
		[]byte(`it's "quoted" \'x\' '\'' ; touch ` + mark),
		[]byte("100%s %d %% ${HOME} $HOME !! !$ \\"),
		[]byte("line one\nline two $(touch " + mark + ")\n\nlast\n\n"),
		[]byte("pâsswörd-密码-🔑"),
		[]byte("\xff\xfe invalid \xc3 utf-8 \xed\xa0\x80"),
		[]byte("\\"), []byte("'"), []byte("''"), []byte("\\'"), []byte("'\\"),
		[]byte("\r\n\t\x01\x7f\x1b[31m"),
		[]byte(""),
		all,
	}
}

// Each shell reads Exports' output back as exactly the values, in its own
// variables and in a child's environment, and runs nothing in them.
func TestExportsRoundTrip(t *testing.T) {
	for _, shell := range Shells {
		t.Run(shell, func(t *testing.T) {
			sh := testenv.Need(t, shell, shell)
			dir := t.TempDir()
			mark := filepath.Join(dir, "X")
			vals := hardValues(mark)
			var as []Assignment
			var script strings.Builder
			for i, v := range vals {
				as = append(as, Assignment{Name: fmt.Sprintf("V%d", i), Value: v})
			}
			ex, err := Exports(shell, as)
			if err != nil {
				t.Fatal(err)
			}
			script.WriteString(ex)
			for i := range vals {
				q := mustQuote(shell, filepath.Join(dir, fmt.Sprintf("shell%d", i)))
				fmt.Fprintf(&script, "printf '%%s' \"$V%d\" > %s\n", i, q)
				q = mustQuote(shell, filepath.Join(dir, fmt.Sprintf("child%d", i)))
				fmt.Fprintf(&script, "/bin/sh -c 'printf %%s \"$V%d\"' > %s\n", i, q)
			}
			os.WriteFile(filepath.Join(dir, "script"), []byte(script.String()), 0o600)
			// The way the functions do it: the code in a variable, then eval.
			var run string
			if shell == "fish" {
				run = "set -l c (cat " + mustQuote(shell, filepath.Join(dir, "script")) + " | string collect); eval $c"
			} else {
				run = "c=$(cat " + mustQuote(shell, filepath.Join(dir, "script")) + "); eval \"$c\""
			}
			cmd := exec.Command(sh, "-c", run)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "LANG=C.UTF-8"}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for i, v := range vals {
				for _, where := range []string{"shell", "child"} {
					got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s%d", where, i)))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, v) {
						t.Errorf("%s: value %d in the %s: %q, want %q", shell, i, where, got, v)
					}
				}
			}
			if _, err := os.Stat(mark); err == nil {
				t.Errorf("%s ran a command inside a value", shell)
			}
		})
	}
}

func TestQuoteRefusesNUL(t *testing.T) {
	if _, err := Exports("bash", []Assignment{{"X", []byte("a\x00b")}}); err == nil || !strings.Contains(err.Error(), "X: the value has a NUL byte") {
		t.Errorf("NUL: %v", err)
	}
}

// FuzzQuote: the POSIX quoting, read back by a minimal reader of the single
// quote rules bash and zsh share, is the value; fish's likewise.
func FuzzQuote(f *testing.F) {
	for _, v := range hardValues("/x") {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		for _, shell := range []string{"bash", "fish"} {
			q, err := Quote(shell, v)
			if bytes.IndexByte(v, 0) >= 0 {
				if err == nil {
					t.Fatal("NUL accepted")
				}
				continue
			}
			if got, ok := unquote(shell, q); !ok || got != string(v) {
				t.Fatalf("%s: %q reads back as %q (%v)", shell, q, got, ok)
			}
		}
	})
}

// unquote reads a word made of single-quoted strings and (POSIX) \' outside
// quotes; any other character outside quotes is refused, since the shell
// would interpret it.
func unquote(shell, q string) (string, bool) {
	var b strings.Builder
	in := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case !in && c == '\'':
			in = true
		case !in && shell != "fish" && c == '\\' && i+1 < len(q) && q[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case !in:
			return "", false
		case in && c == '\'':
			in = false
		case in && shell == "fish" && c == '\\' && i+1 < len(q) && (q[i+1] == '\\' || q[i+1] == '\''):
			b.WriteByte(q[i+1])
			i++
		case in && shell == "fish" && c == '\\':
			return "", false // a lone backslash: fish would keep it, but we never write one
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), !in
}

func TestWrapperScript(t *testing.T) {
	w := Wrapper("/opt/my rssh/rssh", "gh")
	if !IsWrapper(w) {
		t.Fatalf("not recognised: %s", w)
	}
	if IsWrapper([]byte("#!/bin/sh\nexec gh \"$@\"\n")) {
		t.Error("a plain script taken for a wrapper")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	wrap := filepath.Join(dir, "wrap")
	os.MkdirAll(real, 0o755)
	os.MkdirAll(wrap, 0o755)
	os.WriteFile(filepath.Join(real, "gh"), []byte("#!/bin/sh\n"), 0o755)
	tb, _ := Parse(strings.NewReader("gh GH_TOKEN=op://a/b/c\naws A=op://a/b/c\n"), "f")
	os.WriteFile(filepath.Join(wrap, "stale"), Wrapper("/x", "stale"), 0o755)
	os.WriteFile(filepath.Join(wrap, "mine"), []byte("#!/bin/sh\n"), 0o755)
	if err := InstallWrappers(wrap, "/usr/bin/rssh", tb); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(wrap)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "aws gh mine" {
		t.Errorf("wrapper dir holds %q, want aws gh mine", names)
	}
	got, err := LookPath("gh", wrap+":"+real)
	if err != nil || got != filepath.Join(real, "gh") {
		t.Errorf("LookPath: %q %v", got, err)
	}
	if _, err := LookPath("aws", wrap+":"+real); err == nil {
		t.Error("LookPath found the aws wrapper")
	}
	// A file of the tool's name that is not a wrapper is not overwritten.
	os.WriteFile(filepath.Join(wrap, "gh"), []byte("#!/bin/sh\necho mine\n"), 0o755)
	if err := InstallWrappers(wrap, "/usr/bin/rssh", tb); err == nil || !strings.Contains(err.Error(), "is not an rssh wrapper") {
		t.Errorf("overwrote a foreign file: %v", err)
	}
}

// Every tool name the parser accepts becomes a function in each shell,
// and the code reads with a wrapper directory whose path has a space.
func TestInitDefinesEveryName(t *testing.T) {
	tb, err := Parse(strings.NewReader("docker-compose A=op://a/b/c\nx.y B=op://a/b/c\na+b C=op://a/b/c\n_t D=op://a/b/c\n9x E=op://a/b/c\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	for _, shell := range Shells {
		sh := testenv.Need(t, shell, shell)
		dir := t.TempDir()
		code, err := Init(shell, tb, "/usr/bin/rssh", filepath.Join(dir, "my bin"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "init")
		os.WriteFile(p, []byte(code), 0o600)
		probe := "source " + mustQuote(shell, p) + "; for f in docker-compose x.y a+b _t 9x; type $f >/dev/null; or exit 1; end; printf %s $PATH[1]"
		if shell != "fish" {
			probe = "source " + mustQuote(shell, p) + `; for f in docker-compose x.y a+b _t 9x; do type "$f" >/dev/null || exit 1; done; printf %s "${PATH%%:*}"`
		}
		out, err := exec.Command(sh, "-c", probe).CombinedOutput()
		if err != nil || string(out) != filepath.Join(dir, "my bin") {
			t.Errorf("%s: %v\n%s\n%s", shell, err, out, code)
		}
	}
}
