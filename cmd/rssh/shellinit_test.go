package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
	"github.com/rssh/rssh/secret/shellinit"
)

// shellFixture is a HOME for shell-init: this test binary as rssh on PATH,
// fake gh and aws that write the variables they got to files, and a fake op
// holding the tools' secrets.
type shellFixture struct {
	home, out, hold string
	op              *testenv.FakeSecretOp
	env             []string
	values          map[string][]byte // variable → value
	mark            string            // created only if a shell ran part of a value
}

func newShellFixture(t *testing.T) *shellFixture {
	t.Helper()
	fx := &shellFixture{home: t.TempDir()}
	fx.out = filepath.Join(fx.home, "out")
	fx.hold = filepath.Join(fx.home, "hold")
	fx.mark = filepath.Join(fx.home, "X")
	for _, d := range []string{fx.out, fx.hold, filepath.Join(fx.home, "bin"), filepath.Join(fx.home, "real")} {
		os.MkdirAll(d, 0o755)
	}
	for _, f := range []string{"ready", "go"} {
		if err := syscall.Mkfifo(filepath.Join(fx.hold, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rssh := filepath.Join(fx.home, "bin", "rssh")
	if err := os.Symlink(self, rssh); err != nil {
		t.Fatal(err)
	}
	old := shellInitSelf
	shellInitSelf = func() (string, error) { return rssh, nil }
	t.Cleanup(func() { shellInitSelf = old })

	// The real tools: each writes what it was given to files named by its
	// first argument, notes a token in its environment, and exits 3.
	gh := `#!/bin/sh
out=$1; shift
printf '%s' "$GH_TOKEN" > "$out"
[ -n "${OP_SERVICE_ACCOUNT_TOKEN+set}" ] && : > "$out.token"
if [ "${1-}" = hold ]; then printf x > "$HOLD/ready"; cat "$HOLD/go" > /dev/null; fi
exit 3
`
	aws := `#!/bin/sh
printf '%s' "$AWS_ACCESS_KEY_ID" > "$1.id"
printf '%s' "$AWS_SECRET_ACCESS_KEY" > "$1.key"
`
	os.WriteFile(filepath.Join(fx.home, "real", "gh"), []byte(gh), 0o755)
	os.WriteFile(filepath.Join(fx.home, "real", "aws"), []byte(aws), 0o755)
	os.WriteFile(filepath.Join(fx.home, "script"), []byte("#!/bin/sh\n# a script that calls gh, with no shell functions\ngh \"$1\"\n"), 0o755)

	tricky := testenv.TrickyValues(fx.mark)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range tricky {
			if !yield(k) {
				return
			}
		}
	})
	var all [][]byte
	for _, k := range keys {
		all = append(all, tricky[k])
	}
	fx.values = map[string][]byte{
		"GH_TOKEN":              bytes.Join(all, []byte("\n")),
		"AWS_ACCESS_KEY_ID":     tricky["unicode"],
		"AWS_SECRET_ACCESS_KEY": append(append([]byte{}, tricky["backtick"]...), tricky["trailing"]...),
	}
	fx.op = testenv.NewFakeSecretOp(t, map[string][]byte{
		"op://SA - acceptance/GitHub CLI Token/credential": fx.values["GH_TOKEN"],
		"op://SA - acceptance/AWS/access key id":           fx.values["AWS_ACCESS_KEY_ID"],
		"op://SA - acceptance/AWS/secret access key":       fx.values["AWS_SECRET_ACCESS_KEY"],
	})
	fx.env = fx.op.Env([]string{
		"HOME=" + fx.home, "LANG=C.UTF-8", "HOLD=" + fx.hold,
		"PATH=" + filepath.Join(fx.home, "bin") + ":" + filepath.Join(fx.home, "real") + ":/usr/bin:/bin",
		"OP_SERVICE_ACCOUNT_TOKEN=" + fx.op.Token, "RSSH_ENV=acceptance", "RSSH_SECRET_BACKEND=op",
	})
	return fx
}

func (fx *shellFixture) getenv(k string) string {
	for _, kv := range fx.env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

// init is `rssh shell-init SHELL` in fx's HOME, as a file for the rc to read.
func (fx *shellFixture) init(t *testing.T, shell string) string {
	t.Helper()
	var out, errb strings.Builder
	if code := run([]string{"shell-init", shell}, stdio{strings.NewReader(""), &out, &errb}, fx.getenv); code != 0 || errb.Len() > 0 {
		t.Fatalf("shell-init %s: exit %d\n%s", shell, code, errb.String())
	}
	p := filepath.Join(fx.home, "init."+shell)
	os.WriteFile(p, []byte(out.String()), 0o600)
	return p
}

// Acceptance 4: in bash, zsh and fish, the first gh call resolves its
// variable (one op run), the second calls no backend; the value reaches
// the shell and the tool byte for byte with nothing in it run; a script
// calling gh (no functions, only the wrapper scripts on PATH) works, with
// or without the variable inherited; aws's two variables are one batch.
// While gh runs, no process has a secret in its argv, and gh never sees
// the Service Account token.
func TestShellInitWrappers(t *testing.T) {
	for _, shell := range shellinit.Shells {
		t.Run(shell, func(t *testing.T) {
			sh := testenv.Need(t, shell, shell)
			fx := newShellFixture(t)
			initFile := fx.init(t, shell)
			o := func(name string) string { return testenv.ShQuote(filepath.Join(fx.out, name)) }
			log := testenv.ShQuote(filepath.Join(fx.op.Dir, "argv.log"))
			script := testenv.ShQuote(filepath.Join(fx.home, "script"))
			var session string
			if shell == "fish" {
				session = "source " + testenv.ShQuote(initFile) + "\n" +
					"function n; cat " + log + " 2>/dev/null | wc -l | tr -d ' ' > $argv[1]; end\n" +
					"gh " + o("gh1") + "; echo $status > " + o("gh1.rc") + "; n " + o("n1") + "\n"
			} else {
				session = "eval \"$(cat " + testenv.ShQuote(initFile) + ")\"\n" +
					"n() { cat " + log + " 2>/dev/null | wc -l | tr -d ' ' > \"$1\"; }\n" +
					"gh " + o("gh1") + "; echo $? > " + o("gh1.rc") + "; n " + o("n1") + "\n"
			}
			session += "gh " + o("gh2") + " hold; n " + o("n2") + "\n" +
				"printf '%s' \"$GH_TOKEN\" > " + o("shellvar") + "\n" +
				"env -u GH_TOKEN sh " + script + " " + o("gh3") + "; n " + o("n3") + "\n" +
				"sh " + script + " " + o("gh4") + "; n " + o("n4") + "\n" +
				"aws " + o("aws1") + "; n " + o("n5") + "\n" +
				"aws " + o("aws2") + "; n " + o("n6") + "\n"
			cmd := exec.Command(sh, "-c", session)
			cmd.Env = fx.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			ready := make(chan struct{})
			go func() {
				os.ReadFile(filepath.Join(fx.hold, "ready")) // blocks until gh opens it
				close(ready)
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("%s ended before gh ran: %v\n%s", shell, err, stderr.String())
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("gh never ran\n%s", stderr.String())
			}
			testenv.ScanCmdlines(t, fx.values)
			if err := os.WriteFile(filepath.Join(fx.hold, "go"), nil, 0); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s: %v\n%s", shell, err, stderr.String())
				}
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("%s did not finish\n%s", shell, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
			read := func(name string) []byte {
				b, err := os.ReadFile(filepath.Join(fx.out, name))
				if err != nil {
					t.Errorf("%v", err)
				}
				return b
			}
			for i, want := range []string{"1", "1", "2", "2", "3", "3"} {
				if got := strings.TrimSpace(string(read(fmt.Sprintf("n%d", i+1)))); got != want {
					t.Errorf("op runs after step %d: %s, want %s", i+1, got, want)
				}
			}
			for _, f := range []string{"gh1", "gh2", "gh3", "gh4", "shellvar"} {
				if got := read(f); !bytes.Equal(got, fx.values["GH_TOKEN"]) {
					t.Errorf("%s: GH_TOKEN is %q, want %q", f, got, fx.values["GH_TOKEN"])
				}
				if _, err := os.Stat(filepath.Join(fx.out, f+".token")); err == nil {
					t.Errorf("%s: gh ran with OP_SERVICE_ACCOUNT_TOKEN in its environment", f)
				}
			}
			for _, f := range []string{"aws1", "aws2"} {
				if got := read(f + ".id"); !bytes.Equal(got, fx.values["AWS_ACCESS_KEY_ID"]) {
					t.Errorf("%s: AWS_ACCESS_KEY_ID %q", f, got)
				}
				if got := read(f + ".key"); !bytes.Equal(got, fx.values["AWS_SECRET_ACCESS_KEY"]) {
					t.Errorf("%s: AWS_SECRET_ACCESS_KEY %q", f, got)
				}
			}
			if got := strings.TrimSpace(string(read("gh1.rc"))); got != "3" {
				t.Errorf("gh's exit status through the wrapper: %s, want 3", got)
			}
			if _, err := os.Stat(fx.mark); err == nil {
				t.Errorf("a shell ran a command inside a secret (%s exists)", fx.mark)
			}
			fx.op.CheckRuns(t)
		})
	}
}

// The errors a wrapper can meet: one line each, and nothing on stdout to
// evaluate; a session without RSSH_ENV and a tool that is not installed
// start no op at all.
func TestShellInitErrors(t *testing.T) {
	fx := newShellFixture(t)
	try := func(args []string, edit map[string]string) (int, string, string) {
		getenv := func(k string) string {
			if v, ok := edit[k]; ok {
				return v
			}
			return fx.getenv(k)
		}
		var out, errb strings.Builder
		code := run(args, stdio{strings.NewReader(""), &out, &errb}, getenv)
		return code, out.String(), errb.String()
	}
	cfg := filepath.Join(fx.home, ".config", "rssh")
	os.MkdirAll(cfg, 0o700)
	os.WriteFile(filepath.Join(cfg, "tools"), []byte("ghost X=op://SA - ${RSSH_ENV}/Ghost/credential\n"), 0o600)
	for _, c := range []struct {
		args []string
		edit map[string]string
		code int
		want string
	}{
		{[]string{"shell-init", "--export", "bash", "gh"}, map[string]string{"RSSH_ENV": ""}, 255,
			"rssh: gh: GH_TOKEN: RSSH_ENV is not set\nrssh: hint: connect with rssh to a host whose ssh_config block has SetEnv RSSH_ENV=<env>, or export RSSH_ENV\n"},
		{[]string{"shell-init", "--export", "bash", "ghost"}, nil, 127, "rssh: ghost: command not found\n"},
		{[]string{"shell-init", "--export", "bash", "nosuch"}, nil, 255, "rssh: shell-init: nosuch is not in the tools table\n"},
		{[]string{"shell-init", "tcsh"}, nil, 255, "rssh: shell-init: unexpected argument \"tcsh\"\n"},
		{[]string{"shell-init"}, nil, 255, "rssh: shell-init: which shell? bash, zsh or fish\n"},
		{[]string{"shell-init", "--bin-dir", "rel", "bash"}, nil, 255, "is not an absolute path"},
	} {
		code, out, e := try(c.args, c.edit)
		if code != c.code || out != "" || !strings.Contains(e, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, out, e, c.code, c.want)
		}
	}
	if runs := fx.op.Runs(t); len(runs) != 0 {
		t.Errorf("op ran %d times", len(runs))
	}
	// A broken tools file: the file and line.
	os.WriteFile(filepath.Join(cfg, "tools"), []byte("# mine\ngh GH_TOKEN\n"), 0o600)
	code, _, e := try([]string{"shell-init", "bash"}, nil)
	if want := "rssh: shell-init: " + filepath.Join(cfg, "tools") + ":2: want VAR=op://vault/item/field after gh, got \"GH_TOKEN\"\n"; code != 255 || e != want {
		t.Errorf("bad tools file: exit %d, %q, want %q", code, e, want)
	}
	// --list shows each line and where it came from.
	os.WriteFile(filepath.Join(cfg, "tools"), []byte("terraform TF_TOKEN_app_terraform_io=op://SA - ${RSSH_ENV}/Terraform/credential\n"), 0o600)
	code, out, _ := try([]string{"shell-init", "--list"}, nil)
	if code != 0 || !strings.Contains(out, "gh GH_TOKEN=op://SA - ${RSSH_ENV}/GitHub CLI Token/credential\t# built-in\n") ||
		!strings.Contains(out, "terraform TF_TOKEN_app_terraform_io=op://SA - ${RSSH_ENV}/Terraform/credential\t# "+filepath.Join(cfg, "tools")+":1\n") {
		t.Errorf("--list: %d\n%s", code, out)
	}
}

// When resolving fails the wrapper returns rssh's status (255) with its
// one error, does not run the tool, and sets nothing, in every shell.
func TestShellInitFailureStopsTool(t *testing.T) {
	for _, shell := range shellinit.Shells {
		t.Run(shell, func(t *testing.T) {
			sh := testenv.Need(t, shell, shell)
			fx := newShellFixture(t)
			initFile := fx.init(t, shell)
			out := testenv.ShQuote(filepath.Join(fx.out, "gh"))
			session := "source " + testenv.ShQuote(initFile) + "; gh " + out + "; echo \"$?:${GH_TOKEN-unset}\""
			if shell == "fish" {
				session = "source " + testenv.ShQuote(initFile) + "; gh " + out + "; echo \"$status:$GH_TOKEN\""
			}
			var env []string
			for _, kv := range fx.env {
				if !strings.HasPrefix(kv, "RSSH_ENV=") {
					env = append(env, kv)
				}
			}
			cmd := exec.Command(sh, "-c", session)
			cmd.Env = env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			want := "255:unset\n"
			if shell == "fish" {
				want = "255:\n"
			}
			if stdout.String() != want || !strings.HasPrefix(stderr.String(), "rssh: gh: GH_TOKEN: RSSH_ENV is not set\nrssh: hint: ") {
				t.Errorf("stdout %q (want %q), stderr %q", stdout.String(), want, stderr.String())
			}
			if _, err := os.Stat(filepath.Join(fx.out, "gh")); err == nil {
				t.Error("gh ran although its variable could not be resolved")
			}
			if runs := fx.op.Runs(t); len(runs) != 0 {
				t.Errorf("op ran %d times", len(runs))
			}
		})
	}
}
