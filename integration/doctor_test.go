package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// doctorWorld is a token world whose user has what rssh needs: an agent
// holding the key, a signed-in op, the vault variable and a keychain.
func doctorWorld(t *testing.T, opts testenv.SSHDOptions) (*tokenWorld, *testenv.Agent) {
	tw := newTokenWorld(t, opts, true)
	agent := testenv.StartAgent(t)
	agent.Add(t, tw.key)
	tw.env = replaceEnv(tw.env, "SSH_AUTH_SOCK", agent.Sock)
	return tw, agent
}

// doctorLines runs rssh doctor and returns its exit status and its lines by
// check name ("✓ …", "✗ …" with the fix line appended, "- …").
func doctorLines(t *testing.T, w *tokenWorld, args ...string) (int, map[string]string, string) {
	t.Helper()
	r := w.run(nil, rsshBin, append([]string{"doctor", "-F", w.config}, args...)...)
	lines := map[string]string{}
	last := ""
	for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		if strings.HasPrefix(l, "    fix: ") {
			lines[last] += "\n" + l
			continue
		}
		mark, rest, _ := strings.Cut(l, " ")
		name, _, _ := strings.Cut(rest, ":")
		lines[name] = mark + " " + rest
		last = name
	}
	return r.code, lines, r.stdout + r.stderr
}

// On a setup where everything works, every check that applies passes, the
// ones that do not apply are skipped, and doctor exits 0 — having run op
// only as `op whoami`, never `op read`: no token is fetched or sent.
func TestDoctorAllPass(t *testing.T) {
	w, _ := doctorWorld(t, testenv.SSHDOptions{})
	code, lines, out := doctorLines(t, w, "prod")
	if code != 0 {
		t.Fatalf("doctor prod: exit %d\n%s", code, out)
	}
	for _, name := range []string{"config", "environment", "agent", "host key", "server", "AcceptEnv", "op", "vault", "keychain"} {
		if !strings.HasPrefix(lines[name], "✓ ") {
			t.Errorf("check %q: %q, want ✓\n%s", name, lines[name], out)
		}
	}
	// Where the values came from: the config file's lines.
	if !strings.Contains(lines["config"], "hostname from "+w.config+":") || !strings.Contains(lines["config"], "setenv from "+w.config+":") {
		t.Errorf("the config check does not say where the values came from: %q", lines["config"])
	}
	for _, run := range w.op.Runs(t) {
		if run != "argv <whoami>" {
			t.Errorf("doctor ran op as %q; only op whoami may run", run)
		}
	}
	// A host with no environment: the token checks are skipped, not failed.
	code, lines, out = doctorLines(t, w, "plain")
	if code != 0 || !strings.HasPrefix(lines["op"], "- ") || !strings.HasPrefix(lines["AcceptEnv"], "- ") {
		t.Errorf("doctor plain: exit %d\n%s", code, out)
	}
	// --json for scripts.
	r := w.run(nil, rsshBin, "doctor", "--json", "-F", w.config, "prod")
	var got struct {
		OK     bool
		Checks []struct{ Name, Status, Detail, Fix string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !got.OK || r.code != 0 || len(got.Checks) < 9 {
		t.Errorf("doctor --json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
}

// Each broken link makes its own check fail with a fix, and doctor exit
// 255; no other check fails because of it (those that depend on it skip).
func TestDoctorNamesEachBrokenLink(t *testing.T) {
	cases := []struct {
		check   string
		sshd    testenv.SSHDOptions
		host    string
		args    []string
		breakIt func(t *testing.T, w *tokenWorld)
	}{
		{check: "config", host: "prod", breakIt: func(t *testing.T, w *tokenWorld) {
			appendFile(t, w.config, "\tNoSuchKeyword yes\n")
		}},
		{check: "environment", host: "badenv"},
		{check: "agent", host: "prod", breakIt: func(t *testing.T, w *tokenWorld) {
			w.env = replaceEnv(w.env, "SSH_AUTH_SOCK", filepath.Join(w.dir, "no-agent.sock"))
		}},
		{check: "host key", host: "prod", breakIt: func(t *testing.T, w *tokenWorld) {
			os.WriteFile(w.knownHosts, nil, 0o600)
		}},
		{check: "server", host: "prod", args: []string{"-l", "rssh-no-such-user"}},
		{check: "AcceptEnv", host: "prod", sshd: testenv.SSHDOptions{NoAcceptEnv: true}},
		{check: "op", host: "prod", breakIt: func(t *testing.T, w *tokenWorld) {
			w.op.Write(t, "signedout", "")
		}},
		{check: "vault", host: "prod", breakIt: func(t *testing.T, w *tokenWorld) {
			w.env = replaceEnv(w.env, "OP_SA_CREDENTIALS_VAULT", "")
		}},
		{check: "keychain", host: "prod", breakIt: func(t *testing.T, w *tokenWorld) {
			w.env = replaceEnv(w.env, "DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(w.dir, "no-bus"))
		}},
	}
	for _, c := range cases {
		t.Run(c.check, func(t *testing.T) {
			w, _ := doctorWorld(t, c.sshd)
			if c.breakIt != nil {
				c.breakIt(t, w)
			}
			code, lines, out := doctorLines(t, w, append(c.args, c.host)...)
			if code != 255 {
				t.Errorf("exit %d, want 255\n%s", code, out)
			}
			if !strings.HasPrefix(lines[c.check], "✗ ") || !strings.Contains(lines[c.check], "\n    fix: ") {
				t.Errorf("check %q: %q, want ✗ with a fix line\n%s", c.check, lines[c.check], out)
			}
			for name, l := range lines {
				if name != c.check && strings.HasPrefix(l, "✗ ") {
					t.Errorf("check %q failed too: %q\n%s", name, l, out)
				}
			}
		})
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(s)
}

// --nix with Nix installed but no builders: the builders check fails with
// the way to make the machines line; without --nix it is skipped.
func TestDoctorNixWithoutBuilders(t *testing.T) {
	testenv.Need(t, "nix", "nix-bin")
	conf := t.TempDir()
	os.WriteFile(filepath.Join(conf, "nix.conf"), []byte("builders =\n"), 0o644)
	env := append(cleanEnv(), "NIX_CONF_DIR="+conf, "HOME="+t.TempDir())
	run := func(args ...string) (int, string) {
		cmd := exec.Command(rsshBin, append([]string{"doctor"}, args...)...)
		cmd.Env = env
		out, _ := cmd.Output()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := run("--nix")
	if code != 255 || !strings.Contains(out, "✗ nix builders: Nix has no builders configured\n    fix: ") {
		t.Errorf("doctor --nix without builders: exit %d\n%s", code, out)
	}
	code, out = run()
	if code != 0 || !strings.Contains(out, "- nix: Nix has no builders") {
		t.Errorf("doctor without --nix and no builders: exit %d\n%s", code, out)
	}
}
