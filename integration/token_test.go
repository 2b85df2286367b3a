package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

const adminVault = "Admin Vault"

// tokenWorld is a world whose rssh finds a fake op on PATH and runs in a
// sandbox (HOME, TMPDIR, XDG dirs) with no D-Bus unless withKeyring.
type tokenWorld struct {
	*world
	op  *testenv.FakeOp
	sbx *testenv.Sandbox
	bus string // the private D-Bus's address, withKeyring
}

func newTokenWorld(t *testing.T, sshd testenv.SSHDOptions, withKeyring bool) *tokenWorld {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	sshd.Extra += "\nAcceptEnv FOO BAZ"
	w.sshd = testenv.StartSSHD(t, sshd)
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.sshd.Authorize(t, w.user, w.key)
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	w.config = w.writeFile("ssh_config",
		hostBlock("prod", w.sshd, w.user, w.key.Path, w.knownHosts, "\tSetEnv RSSH_ENV=production")+
			hostBlock("dev", w.sshd, w.user, w.key.Path, w.knownHosts, "\tSetEnv RSSH_ENV=development")+
			hostBlock("multi", w.sshd, w.user, w.key.Path, w.knownHosts, "\tSetEnv FOO=bar RSSH_ENV=staging BAZ=\"two words\"")+
			hostBlock("plain", w.sshd, w.user, w.key.Path, w.knownHosts, "")+
			hostBlock("badenv", w.sshd, w.user, w.key.Path, w.knownHosts, "\tSetEnv RSSH_ENV=Prod!"))
	tw := &tokenWorld{world: w, op: testenv.NewFakeOp(t, adminVault), sbx: testenv.NewSandbox(t)}
	var env []string
	for _, kv := range cleanEnv() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PATH", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
			"DBUS_SESSION_BUS_ADDRESS", "DISPLAY":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, tw.sbx.Env()...)
	env = append(env, "PATH="+tw.op.Dir+":/usr/bin:/bin:/usr/sbin:/sbin", "SSH_AUTH_SOCK=",
		"OP_SA_CREDENTIALS_VAULT="+adminVault)
	if withKeyring {
		tw.bus = testenv.StartKeyring(t, tw.sbx)
		env = append(env, "DBUS_SESSION_BUS_ADDRESS="+tw.bus)
	} else {
		// No bus at all, not even the system's: the none cache.
		env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(tw.sbx.Run, "no-bus"))
	}
	w.env = env
	return tw
}

const showEnv = `printf '%s|%s|%s|%s\n' "$OP_SERVICE_ACCOUNT_TOKEN" "$RSSH_ENV" "$FOO" "$BAZ"`

// Acceptance 1: each host gets its own environment's token, a host with no
// RSSH_ENV gets none, SetEnv's other variables arrive, --env overrides.
func TestTokenPerEnvironment(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, false)
	tok := w.op.Tokens
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"prod", showEnv}, tok["production"] + "|production||"},
		{[]string{"dev", showEnv}, tok["development"] + "|development||"},
		{[]string{"plain", showEnv}, "|||"},
		{[]string{"multi", showEnv}, tok["staging"] + "|staging|bar|two words"},
		{[]string{"--env", "development", "prod", showEnv}, tok["development"] + "|development||"},
		{[]string{"--env=none", "prod", showEnv}, "|||"},
	} {
		r := w.rssh(nil, c.args...)
		if r.code != 0 || r.stdout != c.want+"\n" {
			t.Errorf("%q: want %q, got %s", c.args, c.want, r)
		}
	}
	// rssh -G --rssh shows the chosen environment after ssh's lines, and
	// needs no vault for that; plain -G prints only what ssh -G prints.
	w.env = replaceEnv(w.env, "OP_SA_CREDENTIALS_VAULT", "")
	for args, want := range map[string]string{"prod": "rsshenv production", "multi": "rsshenv staging",
		"plain": "rsshenv none", "--env=development prod": "rsshenv development", "--env=none prod": "rsshenv none"} {
		if r := w.rssh(nil, append([]string{"-G", "--rssh"}, strings.Fields(args)...)...); r.code != 0 || !strings.Contains(r.stdout, "\n"+want+"\n") {
			t.Errorf("-G --rssh %s: want %q, got %s", args, want, r)
		}
		if r := w.rssh(nil, append([]string{"-G"}, strings.Fields(args)...)...); r.code != 0 || strings.Contains(r.stdout, "\nrssh") {
			t.Errorf("-G %s: want no rssh lines, got %s", args, r)
		}
	}
	w.op.CheckArgv(t)
	if got := len(w.op.Runs(t)); got != 4 {
		t.Errorf("op ran %d times for 4 token deliveries without a cache", got)
	}
}

// A local OP_SERVICE_ACCOUNT_TOKEN never leaves through SendEnv, whatever
// the patterns say: a host mapped to no environment gets no token.
func TestLocalTokenNotSentBySendEnv(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, false)
	w.env = append(w.env, "OP_SERVICE_ACCOUNT_TOKEN=local-secret", "RSSH_ENV=local")
	r := w.rssh(nil, "-o", "SendEnv *", "plain", showEnv)
	if r.code != 0 || r.stdout != "|||\n" {
		t.Fatalf("got %s", r)
	}
	if strings.Contains(w.sshd.Log(), "local-secret") {
		t.Fatal("the local token reached the server")
	}
}

// Acceptance 2: with the Secret Service, the first connection runs op once,
// the second not at all; clearing the cache makes it run again; a TTL of one
// second expires. Without D-Bus op runs every time (TestTokenPerEnvironment).
func TestTokenCacheSecretService(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, true)
	want := w.op.Tokens["production"] + "|production||\n"
	run := func(wantRuns int, what string, args ...string) {
		t.Helper()
		r := w.rssh(nil, append(args, "prod", showEnv)...)
		if r.code != 0 || r.stdout != want {
			t.Fatalf("%s: %s", what, r)
		}
		if got := len(w.op.Runs(t)); got != wantRuns {
			t.Fatalf("%s: op has run %d times, want %d", what, got, wantRuns)
		}
	}
	run(1, "first connection")
	run(1, "second connection (cache hit)")
	if r := w.run(nil, rsshBin, "--token", "list"); r.code != 0 || !strings.Contains(r.stdout, "production") ||
		strings.Contains(r.stdout, w.op.Tokens["production"]) {
		t.Fatalf("--token list: %s", r)
	}
	if r := w.run(nil, rsshBin, "--token", "clear", "production"); r.code != 0 {
		t.Fatalf("--token clear: %s", r)
	}
	run(2, "after clear")
	run(2, "cached again")
	// An expired entry is refetched: with RsshTokenTTL 1s, once the entry
	// says it was fetched two seconds ago. The test moves the clock by
	// restamping the entry (envmap's rssh-fetched attribute, RFC 3339)
	// instead of sleeping.
	stamp := time.Now().Add(-2 * time.Second).UTC().Format(time.RFC3339Nano)
	if n := testenv.SetKeyringAttr(t, w.bus, map[string]string{"rssh-env": "production"}, "rssh-fetched", stamp); n != 1 {
		t.Fatalf("restamped %d cached production entries, want 1", n)
	}
	run(2, "restamped, within the default TTL")
	run(3, "after the TTL", "-o", "RsshTokenTTL=1s")
	if r := w.run(nil, rsshBin, "--token", "refresh", "production"); r.code != 0 || len(w.op.Runs(t)) != 4 {
		t.Fatalf("--token refresh should run op once more: %s", r)
	}
	testenv.ScanForSecrets(t, w.op.Tokens, w.sbx.Root, w.dir, w.op.Dir)
}

// Acceptance 3: after a -vvv run the token is in no file under HOME, TMPDIR
// or the test's dirs and in none of rssh's output; during a session it is in
// no process's argv; a host-key mismatch delivers nothing and runs no op.
func TestTokenHygiene(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, false)
	tok := w.op.Tokens["production"]

	r := w.rssh(nil, "-vvv", "prod", `test "$OP_SERVICE_ACCOUNT_TOKEN" = "$(printf %s "$OP_SERVICE_ACCOUNT_TOKEN")" && test -n "$OP_SERVICE_ACCOUNT_TOKEN" && echo delivered`)
	if r.code != 0 || r.stdout != "delivered\n" {
		t.Fatalf("-vvv run: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, tok) {
		t.Fatal("the token is in rssh's output")
	}
	testenv.ScanForSecrets(t, w.op.Tokens, w.sbx.Root, w.dir, w.op.Dir)

	// During a session: the remote command waits on stdin while we scan.
	cmd := exec.Command(rsshBin, "-F", w.config, "prod", `test -n "$OP_SERVICE_ACCOUNT_TOKEN" && echo up; cat >/dev/null`)
	cmd.Env = w.env
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "up\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("session did not start with the token: %q", line)
	}
	scanned := scanCmdlines(t, tok)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("session: %v", err)
	}
	if scanned < 3 {
		t.Fatalf("scanned only %d processes' argv", scanned)
	}

	// The DEBUG2 log shows the env values sshd accepts: the session above
	// is there, which proves the check below can see a token.
	if !strings.Contains(w.sshd.Log(), tok) {
		t.Fatal("sshd's DEBUG2 log does not show accepted env values: the check below would prove nothing")
	}
	logBefore := len(w.sshd.Log())

	// Host-key mismatch: nothing delivered, op never runs.
	runsBefore := len(w.op.Runs(t))
	impostor := testenv.NewKey(t, w.dir, "impostor")
	w.writeFile("known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n", w.sshd.Port, impostor.AuthorizedLine()))
	r = w.rssh(nil, "prod", "echo ran")
	if r.code != 255 || r.stdout != "" {
		t.Fatalf("mismatch: %s", r)
	}
	if got := len(w.op.Runs(t)); got != runsBefore {
		t.Fatalf("op ran %d times for a host that failed verification", got-runsBefore)
	}
	if strings.Contains(w.sshd.Log()[logBefore:], tok) || strings.Contains(w.sshd.Log()[logBefore:], "OP_SERVICE_ACCOUNT_TOKEN") {
		t.Fatal("the server received the token from a connection whose host key did not verify")
	}
}

// scanCmdlines reads every process's argv and fails if one holds secret.
func scanCmdlines(t *testing.T, secret string) int {
	t.Helper()
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		n++
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the token is in the argv of %s: %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
	return n
}

// Acceptance 4: without AcceptEnv the command runs and stderr names the fix;
// with --require-env it does not run; the LC_ fallback delivers the token to
// a stock-Debian server (AcceptEnv LANG LC_*).
func TestTokenRefusedAndFallback(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{NoAcceptEnv: true, Extra: "AcceptEnv LANG LC_*"}, false)
	marker := filepath.Join(w.remoteDir(), "ran")
	r := w.rssh(nil, "prod", "touch "+marker+"; echo ran")
	if r.code != 0 || r.stdout != "ran\n" || !strings.Contains(r.stderr, "AcceptEnv OP_SERVICE_ACCOUNT_TOKEN RSSH_ENV") {
		t.Fatalf("refused token: want the command to run and the fix named, got %s", r)
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
		t.Errorf("want one line on stderr, got %q", r.stderr)
	}
	os.Remove(marker)
	r = w.rssh(nil, "--require-env", "prod", "touch "+marker)
	if r.code != 255 || !strings.Contains(r.stderr, "AcceptEnv") {
		t.Fatalf("--require-env: %s", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("--require-env: the command ran")
	}
	// The config equivalent.
	r = w.rssh(nil, "-o", "RsshRequireEnv=yes", "prod", "touch "+marker)
	if _, err := os.Stat(marker); err == nil || r.code != 255 {
		t.Fatalf("RsshRequireEnv yes: the command ran or exit %d", r.code)
	}

	r = w.rssh(nil, "-o", "RsshTokenTransport=lc", "--require-env", "prod", `printf '%s|%s|%s\n' "$OP_SERVICE_ACCOUNT_TOKEN" "$RSSH_ENV" "${LC_RSSH_OP_SERVICE_ACCOUNT_TOKEN-unset}"`)
	if want := w.op.Tokens["production"] + "|production|unset\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("lc transport: want %q, got %s", want, r)
	}
}

// Acceptance 5: op missing, not signed in, item not found, the vault
// variable unset, an invalid environment name: one clear line (plus a hint)
// each, exit 255, the command never runs — the last two before connecting.
// And a 429 twice then an answer is retried and succeeds.
func TestTokenFailures(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, false)
	marker := filepath.Join(w.remoteDir(), "ran")
	dead := deadPort(t)
	check := func(name string, env []string, args []string, want ...string) {
		t.Helper()
		saved := w.env
		w.env = env
		r := w.rssh(nil, append(args, "touch "+marker)...)
		w.env = saved
		if r.code != 255 || r.stdout != "" {
			t.Errorf("%s: want exit 255, got %s", name, r)
		}
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if len(lines) > 2 || !strings.HasPrefix(lines[0], "rssh: ") || (len(lines) == 2 && !strings.HasPrefix(lines[1], "rssh: hint: ")) {
			t.Errorf("%s: want one line and at most a hint, got %q", name, r.stderr)
		}
		for _, s := range want {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("%s: stderr should name %q: %q", name, s, r.stderr)
			}
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%s: the command ran", name)
		}
	}
	noOp := replaceEnv(w.env, "PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
	check("op missing", noOp, []string{"prod"}, "op", "--env none")
	w.op.FailNext(t, 1, testenv.OpErrStamp+"You are not currently signed in. Please run `op signin --help` for instructions")
	check("not signed in", w.env, []string{"prod"}, "signin")
	check("item not found", w.env, []string{"--env", "qa", "prod"}, "SA - qa")
	noVault := replaceEnv(w.env, "OP_SA_CREDENTIALS_VAULT", "")
	check("vault unset", noVault, []string{"-p", fmt.Sprint(dead), "prod"}, "OP_SA_CREDENTIALS_VAULT")
	check("invalid env name", w.env, []string{"-p", fmt.Sprint(dead), "badenv"}, "ssh_config:", "Prod!")

	w.op.FailNext(t, 2, testenv.OpErrStamp+"(429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make.")
	before := len(w.op.Runs(t))
	r := w.rssh(nil, "prod", showEnv)
	if r.code != 0 || r.stdout != w.op.Tokens["production"]+"|production||\n" {
		t.Fatalf("after two 429s: %s", r)
	}
	if got := len(w.op.Runs(t)) - before; got != 3 {
		t.Fatalf("op ran %d times, want 3 (two 429s, then the answer)", got)
	}
}

func replaceEnv(env []string, name, value string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	if value != "" {
		out = append(out, name+"="+value)
	}
	return out
}

// Acceptance 6: two concurrent cold-cache connections run op once.
func TestTokenConcurrentColdCache(t *testing.T) {
	w := newTokenWorld(t, testenv.SSHDOptions{}, true)
	// Hold op until both rssh processes are past their cache miss: the
	// second is then waiting on the lock, not racing the first.
	w.op.Write(t, "hold", "")
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = w.rssh(nil, "prod", showEnv)
		}()
	}
	testenv.WaitFile(t, filepath.Join(w.op.Dir, "started.*"), 20*time.Second)
	waitLockWaiter(t, 20*time.Second)
	w.op.Write(t, "release", "")
	wg.Wait()
	for i, r := range results {
		if r.code != 0 || r.stdout != w.op.Tokens["production"]+"|production||\n" {
			t.Fatalf("connection %d: %s", i, r)
		}
	}
	if got := len(w.op.Runs(t)); got != 1 {
		t.Fatalf("op ran %d times for two concurrent cold-cache connections", got)
	}
}

// waitLockWaiter waits until some process is blocked on a flock (the second
// rssh waiting for the first one's op), as /proc/locks shows with "->".
func waitLockWaiter(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f, err := os.Open("/proc/locks")
		if err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			if bytes.Contains(b, []byte("-> FLOCK")) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no process waited on the token lock within %v", d)
}
