package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// fwdWorld is a tokenWorld whose laptop side also answers secret reads:
// op run without a token is the admin fake (the environment's SA token),
// op run with it is the secret fake, which accepts only production's token.
type fwdWorld struct {
	*tokenWorld
	sop    *testenv.FakeSecretOp
	remote string // the rssh binary the remote user runs
	audit  string
}

const (
	fwdRef   = "op://SA - production/GitHub CLI Token/credential"
	fwdValue = "ghp_$(touch X)`id`'\"%s\nnäive"
)

func newFwdWorld(t *testing.T, extra string) *fwdWorld {
	t.Helper()
	tw := newTokenWorld(t, testenv.SSHDOptions{LogLevel: "DEBUG3"}, false)
	sop := testenv.NewFakeSecretOp(t, nil)
	sop.Token = tw.op.Tokens["production"]
	sop.Set(t, fwdRef, []byte(fwdValue))
	sop.Set(t, "op://SA - production/AWS/key", []byte("AKIA-2"))
	sop.Set(t, "op://Private/bank/password", []byte("never-sent"))

	wrap := t.TempDir()
	script := "#!/bin/sh\nif [ -n \"${OP_SERVICE_ACCOUNT_TOKEN+set}\" ]; then exec " + testenv.ShQuote(sop.Path) +
		" \"$@\"; fi\nexec " + testenv.ShQuote(tw.op.Path) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(wrap, "op"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, kv := range tw.env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			tw.env[i] = "PATH=" + wrap + ":" + v
		}
	}
	tw.writeFile("ssh_config", hostBlock("prod", tw.sshd, tw.user, tw.key.Path, tw.knownHosts,
		"\tSetEnv RSSH_ENV=production\n\tRsshForwardSecrets yes"+extra))
	return &fwdWorld{tokenWorld: tw, sop: sop, remote: sharedRSSH(t, testenv.ShareDir(t)),
		audit: filepath.Join(tw.sbx.Home, ".local", "state", "rssh", "audit.log")}
}

// remoteRead is the remote command that reads ref with the forwarded
// backend chosen on its own: no token in the remote environment.
func (w *fwdWorld) remoteRead(ref string) string {
	return "env -u OP_SERVICE_ACCOUNT_TOKEN " + testenv.ShQuote(w.remote) + " secret read -n " + testenv.ShQuote(ref)
}

// Acceptance 1: a remote command reads a secret while its environment has
// no token; the token is in no remote environment, no sshd log, no file.
func TestForwardSecretsRead(t *testing.T) {
	w := newFwdWorld(t, "")
	tok := w.op.Tokens["production"]
	r := w.rssh(nil, "prod", w.remoteRead(fwdRef)+"; echo; env")
	if r.code != 0 {
		t.Fatalf("remote read: %s", r)
	}
	got, env, _ := strings.Cut(r.stdout, "\n")
	// The value's own newline is part of it: cut after the whole value.
	if !strings.HasPrefix(r.stdout, fwdValue+"\n") {
		t.Fatalf("value %q, want %q", got, fwdValue)
	}
	env = strings.TrimPrefix(r.stdout, fwdValue+"\n")
	if strings.Contains(env, tok) || strings.Contains(env, "OP_SERVICE_ACCOUNT_TOKEN") {
		t.Errorf("the remote environment holds the token:\n%s", env)
	}
	if !strings.Contains(env, "RSSH_ENV=production") {
		t.Errorf("RSSH_ENV did not arrive:\n%s", env)
	}
	if strings.Contains(w.sshd.Log(), tok) {
		t.Error("the sshd log (DEBUG3) holds the token")
	}
	if _, err := os.Stat(filepath.Join(w.sbx.Home, "X")); err == nil {
		t.Error("a shell ran the value")
	}
	testenv.ScanForSecrets(t, map[string]string{"production": tok}, w.dir, w.sbx.Root, w.sshd.Dir)
	w.sop.CheckRuns(t)
	b, err := os.ReadFile(w.audit)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	if !strings.Contains(string(b), `ref="`+fwdRef+`" decision=answered`) {
		t.Errorf("no audit line for the answer:\n%s", b)
	}
	if strings.Contains(string(b), "ghp_") {
		t.Errorf("the audit log holds the value:\n%s", b)
	}
	if st, _ := os.Stat(w.audit); st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v", st.Mode().Perm())
	}
}

// Acceptance 2: a reference outside the host's vault is refused remotely,
// with an audit line and no value.
func TestForwardSecretsOutsideVault(t *testing.T) {
	w := newFwdWorld(t, "")
	r := w.rssh(nil, "-v", "prod", w.remoteRead("op://Private/bank/password"))
	if r.code == 0 || !strings.Contains(r.stderr, `refused by the laptop: outside this host's environment vault "SA - production"`) {
		t.Fatalf("outside the vault: %s", r)
	}
	// At -v the laptop's audit line is on stderr too.
	if !strings.Contains(r.stderr, "secret forwarding") || !strings.Contains(r.stderr, "op://Private/bank/password") {
		t.Errorf("no audit line at -v:\n%s", r.stderr)
	}
	b, _ := os.ReadFile(w.audit)
	if !strings.Contains(string(b), `ref=op://Private/bank/password decision=refused`) || strings.Contains(string(b), "never-sent") {
		t.Errorf("audit log:\n%s", b)
	}
	for _, run := range w.sop.Runs(t) {
		if strings.Contains(strings.Join(run.Argv, " "), "Private") {
			t.Errorf("op was asked for the refused reference: %v", run.Argv)
		}
	}
}

// Acceptance 3: without ForwardAgent the forwarded socket lists nothing and
// signs nothing; with it the user's keys work as with -A.
func TestForwardSecretsAgent(t *testing.T) {
	w := newFwdWorld(t, "")
	r := w.rssh(nil, "prod", "ssh-add -l; echo status=$?")
	if !strings.Contains(r.stdout, "status=1") || !strings.Contains(r.stdout+r.stderr, "no identities") {
		t.Errorf("ssh-add -l without ForwardAgent: %s", r)
	}

	ag := testenv.StartAgent(t)
	ag.Add(t, w.key)
	w2 := newFwdWorld(t, "\n\tForwardAgent yes")
	w2.env = append(w2.env, "SSH_AUTH_SOCK="+ag.Sock)
	r = w2.rssh(nil, "prod", "ssh-add -l && "+w2.remoteRead(fwdRef))
	if r.code != 0 || !strings.Contains(r.stdout, "ED25519") || !strings.HasSuffix(r.stdout, fwdValue) {
		t.Errorf("with ForwardAgent: %s", r)
	}
}

// Acceptance 4: the socket dies with the session: a read after it ended
// fails at once.
func TestForwardSecretsSocketDies(t *testing.T) {
	w := newFwdWorld(t, "")
	r := w.rssh(nil, "prod", `printf %s "$SSH_AUTH_SOCK"`)
	sock := r.stdout
	if r.code != 0 || sock == "" {
		t.Fatalf("no agent socket in the session: %s", r)
	}
	start := time.Now()
	env := append(cleanEnv(), "SSH_AUTH_SOCK="+sock, "RSSH_SECRET_BACKEND=forward")
	cmd := runCmd(t, env, w.remote, "secret", "read", fwdRef)
	if cmd.err == nil || !strings.Contains(cmd.out, "cannot reach the laptop") {
		t.Fatalf("a read after the session ended: %v\n%s", cmd.err, cmd.out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the read took %v to fail", d)
	}
}

// Acceptance 5: 100 reads of one reference in a session run op once.
func TestForwardSecretsCache(t *testing.T) {
	w := newFwdWorld(t, "")
	loop := "i=0; while [ $i -lt 100 ]; do " + w.remoteRead(fwdRef) + " >/dev/null || exit 7; i=$((i+1)); done; echo done"
	r := w.rssh(nil, "prod", loop)
	if r.code != 0 || !strings.Contains(r.stdout, "done") {
		t.Fatalf("100 reads: %s", r)
	}
	if n := len(w.sop.Runs(t)); n != 1 {
		t.Errorf("op ran %d times for 100 reads of one reference, want 1", n)
	}
}

// Through ProxyJump the forwarded channel is the destination's, and the
// jump host sees nothing.
func TestForwardSecretsProxyJump(t *testing.T) {
	w := newFwdWorld(t, "\n\tProxyJump jump")
	b, _ := os.ReadFile(w.config)
	w.writeFile("ssh_config", string(b)+hostBlock("jump", w.sshd, w.user, w.key.Path, w.knownHosts, ""))
	r := w.rssh(nil, "prod", w.remoteRead(fwdRef))
	if r.code != 0 || r.stdout != fwdValue {
		t.Fatalf("through ProxyJump: %s", r)
	}
}

// Connection sharing: a session with secret forwarding never goes through
// a master (the master would push its token); it connects directly.
func TestForwardSecretsNotShared(t *testing.T) {
	w := newFwdWorld(t, "")
	sock := filepath.Join(sockDir(t), "prod")
	_, mlog, exited := w.background(rsshBin, "-F", w.config, "-o", "RsshForwardSecrets=no", "-M", "-S", sock, "-N", "prod")
	waitSock(t, sock, exited, mlog)
	logins := func() int { return strings.Count(w.sshd.Log(), "Accepted publickey") }
	before := logins()
	r := w.rssh(nil, "-v", "-S", sock, "prod", w.remoteRead(fwdRef)+`; printf '|%s' "${OP_SERVICE_ACCOUNT_TOKEN:-none}"`)
	if r.code != 0 || r.stdout != fwdValue+"|none" {
		t.Fatalf("forwarded read with a master up: %s", r)
	}
	if !strings.Contains(r.stderr, "secret forwarding (RsshForwardSecrets) needs its own") || logins() != before+1 {
		t.Errorf("did not connect directly past the master (%d logins, %d before):\n%s", logins(), before, r.stderr)
	}
}

// RsshSecretConfirm: the laptop asks (here through SSH_ASKPASS, as ssh's
// confirmations) before the first read of each reference, once per
// reference; a "no" is a refusal the remote side sees.
func TestForwardSecretsConfirm(t *testing.T) {
	w := newFwdWorld(t, "\n\tRsshSecretConfirm yes")
	asked := filepath.Join(w.dir, "asked")
	askpass := w.writeFile("askpass", "#!/bin/sh\nprintf '%s|%s\\n' \"$SSH_ASKPASS_PROMPT\" \"$1\" >> "+testenv.ShQuote(asked)+
		"\ncase \"$1\" in *GitHub*) exit 0 ;; esac\nexit 1\n")
	os.Chmod(askpass, 0o755)
	w.env = append(w.env, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force")
	r := w.rssh(nil, "prod", w.remoteRead(fwdRef)+"; "+w.remoteRead(fwdRef)+"; "+w.remoteRead("op://SA - production/AWS/key"))
	if r.code == 0 || r.stdout != fwdValue+fwdValue || !strings.Contains(r.stderr, "op://SA - production/AWS/key: refused by the laptop: declined on the laptop") {
		t.Fatalf("confirmed and declined reads: %s", r)
	}
	b, _ := os.ReadFile(asked)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "confirm|Allow ") || !strings.Contains(lines[0], fwdRef) || !strings.Contains(lines[1], "AWS/key") {
		t.Errorf("askpass asked %q, want once for each reference", lines)
	}
}
