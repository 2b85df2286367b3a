package secret

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rssh/rssh/internal/testenv"
)

// hostile are the values the acceptance names: shell syntax that must
// never run, quotes, %, newlines, non-ASCII, and what systemd and sh
// treat specially (\ at the end, $NAME, ${NAME}, a lone $, CR, tab,
// leading and trailing blanks, =, #).
var hostile = []string{
	"$(touch X)",
	"`touch X`",
	`it's "quoted" 'both'`,
	"100% %s %n %%",
	"line one\nline two\n",
	"naïve ünïcödé — 秘密 🔑",
	`back\slash\`,
	`\\n \" \' \$ \` + "`",
	"$HOME ${HOME} $ $$ $1 ${",
	"\r\n\tcarriage\r",
	"  padded  ",
	"a=b#c # not a comment",
	"",
	"'",
	`"`,
	"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
}

func hostileVars() []EnvVar {
	var vars []EnvVar
	for i, v := range hostile {
		vars = append(vars, EnvVar{"V" + testenv.Itoa(i), v})
	}
	return vars
}

// The file reads back byte for byte with systemd's rules.
func TestEnvironmentFileSystemdRules(t *testing.T) {
	vars := hostileVars()
	data, err := FormatEnvironmentFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	got := testenv.ParseSystemdEnvFile(data)
	for _, v := range vars {
		if g, ok := got[v.Name]; !ok || g != v.Value {
			t.Errorf("systemd reads %s as %q (present %v), want %q", v.Name, g, ok, v.Value)
		}
	}
	if len(got) != len(vars) {
		t.Errorf("systemd reads %d variables, want %d", len(got), len(vars))
	}
}

// The file reads back byte for byte with `. FILE` in every shell here,
// and nothing in a value runs.
func TestEnvironmentFileShellRoundTrip(t *testing.T) {
	vars := hostileVars()
	data, err := FormatEnvironmentFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "env")
	os.WriteFile(file, data, 0o400)
	shells := []string{testenv.Need(t, "sh", "dash"), testenv.Need(t, "bash", "bash")}
	if p, err := exec.LookPath("zsh"); err == nil {
		shells = append(shells, p)
	}
	for _, sh := range shells {
		for _, v := range vars {
			cmd := exec.Command(sh, "-c", `. "$1"; eval "printf %s \"\$$2\""`, "sh", file, v.Name)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil || string(out) != v.Value {
				t.Errorf("%s: . FILE; $%s = %q (%v), want %q", filepath.Base(sh), v.Name, out, err, v.Value)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "X")); err == nil {
		t.Error("a value ran: X was created")
	}
}

// systemd's own code, where it can run without PID 1: the user
// environment generator reads environment.d files with the same
// tokenizer as EnvironmentFile= (parse_env_file_internal), then expands
// $NAME and ${NAME} (merge_env_file), and prints each variable quoted for
// a shell. Values without an expansion read back through it byte for
// byte, and the transcription above agrees with it on every one.
func TestEnvironmentFileRealSystemd(t *testing.T) {
	gen := "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator"
	if _, err := os.Stat(gen); err != nil {
		testenv.Need(t, "30-systemd-environment-d-generator", "systemd")
	}
	var vars []EnvVar
	for _, v := range hostileVars() {
		if !strings.Contains(v.Value, "$") {
			vars = append(vars, v)
		}
	}
	vars = append(vars, EnvVar{"CMD", "$(touch X) and `touch X`"})
	data, err := FormatEnvironmentFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir()
	os.MkdirAll(filepath.Join(cfg, "environment.d"), 0o700)
	os.WriteFile(filepath.Join(cfg, "environment.d", "50-rssh.conf"), data, 0o400)
	cmd := exec.Command(gen)
	cmd.Env = []string{"XDG_CONFIG_HOME=" + cfg, "PATH=/usr/bin:/bin"}
	cmd.Dir = cfg
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", gen, err)
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(out), "\n"), "\n") {
		name, q, _ := strings.Cut(line, "=")
		got[name] = unquoteSystemd(t, q)
	}
	mine := testenv.ParseSystemdEnvFile(data)
	for _, v := range vars {
		if got[v.Name] != v.Value {
			t.Errorf("systemd reads %s as %q, want %q", v.Name, got[v.Name], v.Value)
		}
		if mine[v.Name] != got[v.Name] {
			t.Errorf("the transcription reads %s as %q, systemd as %q", v.Name, mine[v.Name], got[v.Name])
		}
	}
	if _, err := os.Stat(filepath.Join(cfg, "X")); err == nil {
		t.Error("a value ran: X was created")
	}
}

// unquoteSystemd undoes shell_maybe_quote(s, 0): bare, or "…" with \ before
// " \ ` $, and C escapes (\n \t \r \xHH) for control characters.
func unquoteSystemd(t *testing.T, q string) string {
	if !strings.HasPrefix(q, `"`) {
		return q
	}
	if !strings.HasSuffix(q, `"`) || len(q) < 2 {
		t.Fatalf("systemd printed %q", q)
	}
	q = q[1 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] != '\\' || i+1 == len(q) {
			b.WriteByte(q[i])
			continue
		}
		i++
		switch q[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'x':
			n, err := strconv.ParseUint(q[i+1:i+3], 16, 8)
			if err != nil {
				t.Fatalf("systemd printed %q", q)
			}
			b.WriteByte(byte(n))
			i += 2
		default:
			b.WriteByte(q[i])
		}
	}
	return b.String()
}

func TestEnvironmentFileRefuses(t *testing.T) {
	for _, vars := range [][]EnvVar{
		{{"1BAD", "x"}},
		{{"A-B", "x"}},
		{{"", "x"}},
		{{"A", "x"}, {"A", "y"}},
		{{"BIN", "\xff\xfe"}},
		{{"NUL", "a\x00b"}},
	} {
		_, err := FormatEnvironmentFile(vars)
		if err == nil {
			t.Errorf("FormatEnvironmentFile(%q) succeeded", vars)
			continue
		}
		for _, v := range vars {
			if v.Value != "x" && v.Value != "y" && strings.Contains(err.Error(), v.Value) {
				t.Errorf("error %q shows the value", err)
			}
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	env := map[string]string{"APP_ENV": "prod", "HOME": "/root"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	src := `# comment
export A=op://$APP_ENV/db/password
B = plain value   # trailing comment
C='single $APP_ENV # kept
second line'
D="double ${APP_ENV}\n\t\"q\" \$HOME \x"
E=${A}-suffix
F=
G=color#fff
H="multi
line" # comment
  I=$UNSET.$APP_ENV
`
	got, err := ParseEnvFile("t.env", []byte(src), lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvVar{
		{"A", "op://prod/db/password"},
		{"B", "plain value"},
		{"C", "single $APP_ENV # kept\nsecond line"},
		{"D", "double prod\n\t\"q\" $HOME \\x"},
		{"E", "op://prod/db/password-suffix"},
		{"F", ""},
		{"G", "color#fff"},
		{"H", "multi\nline"},
		{"I", ".prod"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnvFile =\n%q\nwant\n%q", got, want)
	}
	for _, tc := range []struct{ src, err string }{
		{"A=1\nnot an assignment\n", "t.env:2: not a KEY=VALUE line"},
		{"A=1\n\nB='open\nstill\n", "t.env:3: unterminated single quote"},
		{"X=\"open\n", "t.env:1: unterminated double quote"},
		{"9X=1", `t.env:1: "9X" is not a variable name`},
		{"A='v' tail", "t.env:1: text after the closing quote"},
		{"J='it''s'", "t.env:1: text after the closing quote"},
		{"A=\"v\"\nB=\"x\nyz\" tail", "t.env:2: text after the closing quote"},
	} {
		_, err := ParseEnvFile("t.env", []byte(tc.src), lookup)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseEnvFile(%q) error %v, want %q", tc.src, err, tc.err)
		}
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\nB='x\ny'\nC=\"${A}\\n\" # c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseEnvFile("f", data, nil)
		if err != nil {
			return
		}
		for _, v := range vars {
			if !ValidEnvName(v.Name) {
				t.Fatalf("name %q", v.Name)
			}
		}
	})
}

// Whatever the value, what FormatEnvironmentFile accepts systemd's rules
// read back exactly.
func FuzzEnvironmentFile(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		data, err := FormatEnvironmentFile([]EnvVar{{"K", v}, {"L", "after"}})
		if err != nil {
			if utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 {
				t.Fatalf("refused %q: %v", v, err)
			}
			return
		}
		got := testenv.ParseSystemdEnvFile(data)
		if got["K"] != v || got["L"] != "after" || len(got) != 2 {
			t.Fatalf("%q reads back as %q", v, got)
		}
		if bytes.Count(data, []byte("\n")) != 2+strings.Count(v, "\n") {
			t.Fatalf("unexpected lines in %q", data)
		}
	})
}
