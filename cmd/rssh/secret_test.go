package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// secretWorld is a fake op holding tricky values and the environment an
// rssh process (this test binary under the name rssh, see TestMain) needs
// to resolve them: the fake first on PATH and its token in
// OP_SERVICE_ACCOUNT_TOKEN.
type secretWorld struct {
	t      *testing.T
	dir    string
	mark   string // a value's shell command would create it
	fake   *testenv.FakeSecretOp
	values map[string][]byte // name → value
	refs   map[string]string // name → reference
	names  []string          // sorted
	rssh   string
	env    []string
}

func newSecretWorld(t *testing.T) *secretWorld {
	t.Helper()
	w := &secretWorld{t: t, dir: t.TempDir(), refs: map[string]string{}}
	w.mark = filepath.Join(w.dir, "X")
	w.values = testenv.TrickyValues(w.mark)
	table := map[string][]byte{}
	for name, v := range w.values {
		// Vault names with spaces, as the design's "SA - <env>" vaults.
		ref := "op://SA - test/" + name + "/credential"
		w.refs[name] = ref
		table[ref] = v
		w.names = append(w.names, name)
	}
	sort.Strings(w.names)
	w.fake = testenv.NewFakeSecretOp(t, table)
	bin := filepath.Join(w.dir, "bin")
	os.Mkdir(bin, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w.rssh = filepath.Join(bin, "rssh")
	if err := os.Symlink(self, w.rssh); err != nil {
		t.Fatal(err)
	}
	w.env = w.fake.Env([]string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + w.dir, "OP_SERVICE_ACCOUNT_TOKEN=" + w.fake.Token})
	return w
}

// secrets are the values and the token, for the argv scan.
func (w *secretWorld) secrets() map[string][]byte {
	m := map[string][]byte{"the token": []byte(w.fake.Token)}
	for n, v := range w.values {
		m["the value "+n] = v
	}
	return m
}

// rsshRun runs rssh with args and stdin; with held, op stops at its gate,
// every process's argv is scanned while both run, and op is let go.
func (w *secretWorld) rsshRun(held bool, stdin []byte, args ...string) (stdout, stderr []byte, code int) {
	w.t.Helper()
	var hold *testenv.Hold
	if held {
		hold = w.fake.Hold(w.t)
	}
	cmd := exec.Command(w.rssh, args...)
	cmd.Env = w.env
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	if held {
		opPID := hold.WaitStarted(w.t, 30*time.Second)
		pids := testenv.ScanCmdlines(w.t, w.secrets())
		if !slices.Contains(pids, opPID) || !slices.Contains(pids, cmd.Process.Pid) {
			w.t.Errorf("the scan did not see op (%d) and rssh (%d) running", opPID, cmd.Process.Pid)
		}
		hold.Release(w.t, true)
	}
	err := cmd.Wait()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		w.t.Fatal(err)
	}
	return out.Bytes(), errb.Bytes(), code
}

func (w *secretWorld) checkNoShell() {
	w.t.Helper()
	if _, err := os.Stat(w.mark); err == nil {
		w.t.Errorf("%s exists: a shell ran a value", w.mark)
	}
	w.fake.CheckRuns(w.t)
}

// Acceptance 1, read: byte-exact values on stdout (a newline added unless
// -n, as op read) and in -o files with their mode; no value or token in any
// argv while op runs; no shell ever sees a value.
func TestSecretReadFakeOp(t *testing.T) {
	w := newSecretWorld(t)
	for i, name := range w.names {
		v := w.values[name]
		held := i == 0
		out, errb, code := w.rsshRun(held, nil, "secret", "read", w.refs[name])
		if code != 0 || !bytes.Equal(out, append(slices.Clone(v), '\n')) {
			t.Errorf("read %s: exit %d, stdout %q, stderr %s", name, code, out, errb)
		}
		// Flags after the reference, as op allows.
		out, errb, code = w.rsshRun(false, nil, "secret", "read", w.refs[name], "-n")
		if code != 0 || !bytes.Equal(out, v) {
			t.Errorf("read -n %s: exit %d, stdout %q, stderr %s", name, code, out, errb)
		}
	}
	file := filepath.Join(w.dir, "out", "secret.txt")
	os.Mkdir(filepath.Dir(file), 0o700)
	out, errb, code := w.rsshRun(true, nil, "secret", "read", "-n", "-o", file, "--file-mode", "0640", w.refs["newlines"])
	got, _ := os.ReadFile(file)
	if code != 0 || len(out) != 0 || !bytes.Equal(got, w.values["newlines"]) {
		t.Errorf("read -o: exit %d, stdout %q, file %q, stderr %s", code, out, got, errb)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("read -o --file-mode 0640: %v, %v", st.Mode(), err)
	}
	_, _, code = w.rsshRun(false, nil, "secret", "read", "--out-file", file, w.refs["unicode"])
	got, _ = os.ReadFile(file)
	st, _ := os.Stat(file)
	if code != 0 || string(got) != string(w.values["unicode"])+"\n" || st.Mode().Perm() != 0o600 {
		t.Errorf("read --out-file (default mode): exit %d, %q, %v", code, got, st.Mode())
	}
	w.checkNoShell()
}

// Acceptance 1, inject: a template of enclosed and bare references among
// text a shell would act on comes out byte-exact, through one op run; an
// unresolved reference leaves OUT as it was and exits non-zero.
func TestSecretInjectFakeOp(t *testing.T) {
	w := newSecretWorld(t)
	var tpl, want bytes.Buffer
	for i, name := range w.names {
		lit := fmt.Sprintf("# %s: $HOME `id` $(touch %s) 100%% \"q\" 'q' ü\n%s_enclosed=", name, w.mark, strings.ToUpper(name))
		tpl.WriteString(lit)
		want.WriteString(lit)
		tpl.WriteString("{{ " + w.refs[name] + " }}\n")
		want.Write(w.values[name])
		want.WriteString("\n")
		if i%2 == 0 { // bare references cannot hold spaces: a vault chosen by variable
			tpl.WriteString("bare=op://${INJECT_VAULT:-nope}/" + name + "/credential;\n")
			want.WriteString("bare=")
			want.Write(w.values[name])
			want.WriteString(";\n")
		}
	}
	tpl.WriteString(`{{ "{{ op://not/a/reference }}" }}` + "\n")
	want.WriteString("{{ op://not/a/reference }}\n")
	for _, name := range w.names {
		w.fake.Set(t, "op://SA-test/"+name+"/credential", w.values[name])
	}
	w.env = append(w.env, "INJECT_VAULT=SA-test")

	// stdin → stdout, held for the argv scan.
	out, errb, code := w.rsshRun(true, tpl.Bytes(), "secret", "inject")
	if code != 0 || !bytes.Equal(out, want.Bytes()) {
		t.Errorf("inject: exit %d, stderr %s\n got %q\nwant %q", code, errb, out, want.Bytes())
	}
	if runs := w.fake.Runs(t); len(runs) != 1 || runs[0].Argv[0] != "inject" {
		t.Errorf("inject ran op %d times, want one op inject: %+v", len(runs), runs)
	}

	// -i FILE -o OUT with a mode.
	in := filepath.Join(w.dir, "app.conf.tpl")
	os.WriteFile(in, tpl.Bytes(), 0o644)
	outFile := filepath.Join(w.dir, "app.conf")
	_, errb, code = w.rsshRun(false, nil, "secret", "inject", "-i", in, "-o", outFile, "--file-mode", "0400")
	got, _ := os.ReadFile(outFile)
	st, _ := os.Stat(outFile)
	if code != 0 || !bytes.Equal(got, want.Bytes()) || st.Mode().Perm() != 0o400 {
		t.Errorf("inject -i -o: exit %d, mode %v, stderr %s, got %q", code, st.Mode(), errb, got)
	}

	// One reference that does not resolve: exit 255, nothing on stdout,
	// OUT untouched, the error names the reference.
	broken := append(slices.Clone(tpl.Bytes()), []byte("x={{ op://SA - test/missing item/credential }}\n")...)
	os.WriteFile(in, broken, 0o644)
	before := len(w.fake.Runs(t))
	out, errb, code = w.rsshRun(false, nil, "secret", "inject", "-i", in, "-o", outFile)
	got, _ = os.ReadFile(outFile)
	st, _ = os.Stat(outFile)
	if code != exitSecretFailed || len(out) != 0 || !bytes.Equal(got, want.Bytes()) || st.Mode().Perm() != 0o400 {
		t.Errorf("unresolved: exit %d, stdout %q, OUT changed: %v", code, out, !bytes.Equal(got, want.Bytes()))
	}
	if !strings.Contains(string(errb), `rssh: secret inject: resolving "op://SA - test/missing item/credential": "missing item" isn't an item`) ||
		!strings.Contains(string(errb), "rssh: hint: ") {
		t.Errorf("unresolved: stderr %s", errb)
	}
	for _, v := range w.values {
		if bytes.Contains(errb, v) {
			t.Errorf("a value is in the error: %s", errb)
		}
	}
	// One op inject, then (to name exactly the references that failed)
	// one op read per distinct reference: 7 + 4 + the missing one.
	if n := len(w.fake.Runs(t)) - before; n > 1+12 {
		t.Errorf("an unresolved batch ran op %d times", n)
	}
	if ents, _ := os.ReadDir(w.dir); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return strings.Contains(e.Name(), ".tmp-") }) {
		t.Errorf("a temporary file was left behind")
	}
	w.checkNoShell()
}

// Failures before anything resolves: one clear line (and a hint), exit
// 255, op never run.
func TestSecretCommandErrors(t *testing.T) {
	w := newSecretWorld(t)
	noToken := slices.DeleteFunc(slices.Clone(w.env), func(kv string) bool { return strings.HasPrefix(kv, "OP_SERVICE_ACCOUNT_TOKEN=") })
	cases := []struct {
		name  string
		env   []string
		stdin string
		args  []string
		want  []string
	}{
		{"no token", noToken, "", []string{"secret", "read", w.refs["unicode"]},
			[]string{"rssh: secret read: no 1Password service account token: give --token-file FILE, or a systemd credential $CREDENTIALS_DIRECTORY/op-service-account-token, or set OP_SERVICE_ACCOUNT_TOKEN\n"}},
		{"bad reference", w.env, "", []string{"secret", "read", "op://vault/item"},
			[]string{`rssh: secret read: invalid secret reference "op://vault/item": has 2 of the vault, item and field parts`, "rssh: hint: write it as op://vault/item/[section/]field"}},
		{"bad reference in a template", w.env, "a\n{{ op://v/i/f?attribute=colour }}\n", []string{"secret", "inject"},
			[]string{`rssh: secret inject: template line 2: invalid secret reference "op://v/i/f?attribute=colour": unknown attribute "colour"`}},
		{"unset variable", w.env, "op://$NO_SUCH_VAR_X/i/f", []string{"secret", "inject"},
			[]string{"variable NO_SUCH_VAR_X in \"op://$NO_SUCH_VAR_X/i/f\" is not set"}},
		{"two references", w.env, "", []string{"secret", "read", "op://a/b/c", "op://a/b/d"},
			[]string{"rssh: secret read: want one secret reference, got 2 arguments\nrssh: hint: usage: rssh secret read"}},
		{"unknown flag", w.env, "", []string{"secret", "read", "--nope", "op://a/b/c"},
			[]string{"rssh: secret read: flag provided but not defined: -nope\n"}},
		{"bad mode", w.env, "", []string{"secret", "read", "--file-mode", "999", "op://a/b/c"},
			[]string{`file mode "999": want octal permission bits`}},
		{"unknown backend", w.env, "", []string{"secret", "read", "--backend", "vault", "op://a/b/c"},
			[]string{`rssh: secret read: --backend "vault": unknown backend` + "\nrssh: hint: choose one of op | sdk | forward | auto"}},
		{"unknown backend from the environment", append(slices.Clone(w.env), "RSSH_SECRET_BACKEND=nope"), "", []string{"secret", "read", "op://a/b/c"},
			[]string{`rssh: secret read: RSSH_SECRET_BACKEND "nope": unknown backend`}},
		{"unreadable token file", w.env, "", []string{"secret", "read", "--token-file", "/nonexistent/tok", "op://a/b/c"},
			[]string{"rssh: secret read: token from --token-file /nonexistent/tok: no such file or directory\n"}},
		{"no op", append(slices.Clone(noToken), "PATH=/nonexistent", "OP_SERVICE_ACCOUNT_TOKEN=x"), "", []string{"secret", "read", "op://a/b/c"},
			[]string{"rssh: secret read: the 1Password CLI (op) is not on PATH\nrssh: hint: install the 1Password CLI"}},
	}
	for _, c := range cases {
		w.env = c.env
		out, errb, code := w.rsshRun(false, []byte(c.stdin), c.args...)
		if code != exitSecretFailed || len(out) != 0 {
			t.Errorf("%s: exit %d, stdout %q", c.name, code, out)
		}
		for _, want := range c.want {
			if !strings.Contains(string(errb), want) {
				t.Errorf("%s: stderr %q\n does not hold %q", c.name, errb, want)
			}
		}
	}
	if runs := w.fake.Runs(t); len(runs) != 0 {
		t.Errorf("op ran: %+v", runs)
	}

	// -h: the usage on stdout, exit 0.
	out, _, code := w.rsshRun(false, nil, "secret", "inject", "-h")
	if code != 0 || !strings.HasPrefix(string(out), "usage: rssh secret inject") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
}

// The token from --token-file and from a systemd credential reaches op (the
// fake answers only to its token).
func TestSecretTokenSources(t *testing.T) {
	w := newSecretWorld(t)
	w.env = slices.DeleteFunc(w.env, func(kv string) bool { return strings.HasPrefix(kv, "OP_SERVICE_ACCOUNT_TOKEN=") })
	tokFile := filepath.Join(w.dir, "token")
	os.WriteFile(tokFile, []byte(w.fake.Token+"\n"), 0o600)
	out, errb, code := w.rsshRun(false, nil, "secret", "read", "-n", "--token-file", tokFile, w.refs["percent"])
	if code != 0 || !bytes.Equal(out, w.values["percent"]) {
		t.Errorf("--token-file: exit %d, %q, %s", code, out, errb)
	}
	creds := filepath.Join(w.dir, "creds")
	os.Mkdir(creds, 0o700)
	os.WriteFile(filepath.Join(creds, "op-service-account-token"), []byte(w.fake.Token), 0o400)
	w.env = append(w.env, "CREDENTIALS_DIRECTORY="+creds, "OP_SERVICE_ACCOUNT_TOKEN=ops_not_this_one")
	out, errb, code = w.rsshRun(false, nil, "secret", "read", "-n", w.refs["percent"])
	if code != 0 || !bytes.Equal(out, w.values["percent"]) {
		t.Errorf("$CREDENTIALS_DIRECTORY: exit %d, %q, %s", code, out, errb)
	}
	w.fake.CheckRuns(t)
}

// "secret" in first position is the command; anywhere else, after --, or
// as user@secret it is a host name.
func TestSecretWordVersusHostNamedSecret(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("Host secret\n\tHostName 10.9.8.7\n\tPort 2222\n"), 0o600)
	std := func() (stdio, *bytes.Buffer, *bytes.Buffer) {
		var out, errb bytes.Buffer
		return stdio{strings.NewReader(""), &out, &errb}, &out, &errb
	}
	noenv := func(string) string { return "" }

	s, _, errb := std()
	if code := run([]string{"secret"}, s, noenv); code != exitSecretFailed || !strings.Contains(errb.String(), "rssh: secret needs a command") {
		t.Errorf("rssh secret: exit %d, %s", code, errb)
	}
	for _, args := range [][]string{
		{"-G", "-F", cfg, "secret"},
		{"user@secret", "-G", "-F", cfg},
		{"-F", cfg, "-G", "--", "secret"},
	} {
		s, out, errb := std()
		code := run(args, s, noenv)
		if code != 0 || !strings.Contains(out.String(), "\nhostname 10.9.8.7\n") || !strings.Contains(out.String(), "\nport 2222\n") {
			t.Errorf("rssh %q: exit %d, stderr %s, not the host named secret:\n%s", args, code, errb, out)
		}
	}

	// rssh -- secret: a host name, as for ssh (which, with no such host,
	// says the same: ssh -- secret true).
	s, _, errb = std()
	if code := run([]string{"--", "secret", "true"}, s, noenv); code != 255 || !strings.Contains(errb.String(), "Could not resolve hostname secret") {
		t.Errorf("rssh -- secret: exit %d, stderr %s", code, errb)
	}

	// And a real sshd under the name secret is reached.
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{LogLevel: "INFO"})
	key := testenv.NewKey(t, dir, "id")
	user := testenv.LoginUser(t)
	sshd.Authorize(t, user, key)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(sshd.KnownHostsLine()+"\n"), 0o600)
	os.WriteFile(cfg, []byte(sshd.HostBlock("secret", user, key.Path, kh)), 0o600)
	for _, args := range [][]string{{"-F", cfg, "--", "secret", "echo", "reached"}, {user + "@secret", "-F", cfg, "echo", "reached"}} {
		s, out, errb := std()
		if code := run(args, s, noenv); code != 0 || out.String() != "reached\n" {
			t.Errorf("rssh %q: exit %d, stdout %q, stderr %s", args, code, out, errb)
		}
	}
}
