// Command secretfwd benchmarks secret forwarding (issue 16, acceptance 6)
// in one run on one machine:
//
//	go run ./bench/secretfwd     # as root on Debian, after scripts/setup
//
// Figures, each a median over -n reads:
//
//   - forwarded, warm: `rssh secret read` on the remote side of a session
//     started with RsshForwardSecrets, the value cached on the laptop (the
//     read crosses the agent channel; no op runs);
//   - forwarded, first: the first read of the session (the laptop runs op
//     for the token and the value);
//   - direct: `rssh secret read` with OP_SERVICE_ACCOUNT_TOKEN in the
//     environment (op runs every time; a fake op stands in for 1Password).
//
// The remote is the same machine over loopback, so the forwarded figure is
// rssh's start plus one agent-channel round trip through sshd.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

const (
	adminVault = "Admin Vault"
	ref        = "op://SA - production/GitHub CLI Token/credential"
)

func main() {
	n := flag.Int("n", 30, "reads per figure")
	flag.Parse()
	testenv.RunStandalone("bench-secretfwd", func(tb *testenv.Standalone) error { return run(tb, *n) })
}

func run(tb *testenv.Standalone, n int) error {
	dir := tb.TempDir()
	bin, err := testenv.BuildRSSH(dir)
	if err != nil {
		return err
	}
	share := testenv.ShareDir(tb)
	remote := filepath.Join(share, "rssh")
	b, _ := os.ReadFile(bin)
	if err := os.WriteFile(remote, b, 0o755); err != nil {
		return err
	}

	admin := testenv.NewFakeOp(tb, adminVault)
	sop := testenv.NewFakeSecretOp(tb, nil)
	sop.Token = admin.Tokens["production"]
	sop.Set(tb, ref, []byte("ghp_benchvalue"))
	wrap := tb.TempDir()
	script := "#!/bin/sh\nif [ -n \"${OP_SERVICE_ACCOUNT_TOKEN+set}\" ]; then exec " + testenv.ShQuote(sop.Path) +
		" \"$@\"; fi\nexec " + testenv.ShQuote(admin.Path) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(wrap, "op"), []byte(script), 0o755); err != nil {
		return err
	}

	sshd := testenv.StartSSHD(tb, testenv.SSHDOptions{LogLevel: "INFO"})
	user := testenv.LoginUser(tb)
	key := testenv.NewKey(tb, dir, "id_ed25519")
	sshd.Authorize(tb, user, key)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(sshd.KnownHostsLine()+"\n"), 0o600)
	cfg := filepath.Join(dir, "ssh_config")
	os.WriteFile(cfg, []byte(sshd.HostBlock("prod", user, key.Path, kh, "SetEnv RSSH_ENV=production", "RsshForwardSecrets yes")), 0o600)
	sbx := testenv.NewSandbox(tb)
	env := append(clean(), sbx.Env()...)
	env = append(env, "PATH="+wrap+":/usr/bin:/bin:/usr/sbin:/sbin", "SSH_AUTH_SOCK=", "OP_SA_CREDENTIALS_VAULT="+adminVault,
		"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(sbx.Run, "no-bus"))

	// One session, n+1 reads: the first fetches, the rest are warm.
	loop := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do s=$(date +%%s%%N); env -u OP_SERVICE_ACCOUNT_TOKEN %s secret read -n %s >/dev/null || exit 7; e=$(date +%%s%%N); echo $((e-s)); i=$((i+1)); done`,
		n+1, testenv.ShQuote(remote), testenv.ShQuote(ref))
	cmd := exec.Command(bin, "-F", cfg, "prod", loop)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("forwarded reads: %w\n%s", err, out)
	}
	var fwd []time.Duration
	for _, l := range strings.Fields(string(out)) {
		ns, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			return fmt.Errorf("forwarded reads: %q", out)
		}
		fwd = append(fwd, time.Duration(ns))
	}
	if len(fwd) != n+1 {
		return fmt.Errorf("forwarded reads: %d timings, want %d", len(fwd), n+1)
	}

	// The same read with the token in the environment.
	direct := make([]time.Duration, 0, n)
	denv := append(clean(), "PATH="+sop.Dir+":/usr/bin:/bin", "OP_SERVICE_ACCOUNT_TOKEN="+sop.Token)
	for i := 0; i < n; i++ {
		c := exec.Command(bin, "secret", "read", "-n", ref)
		c.Env = denv
		start := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("direct read: %w\n%s", err, out)
		}
		direct = append(direct, time.Since(start))
	}

	warm := testenv.Median(fwd[1:])
	d := testenv.Median(direct)
	fmt.Printf("%-44s %10s\n", "`rssh secret read`", "median")
	fmt.Printf("%-44s %10s\n", "forwarded, first read of the session", ms(fwd[0]))
	fmt.Printf("%-44s %10s\n", "forwarded, warm (cached on the laptop)", ms(warm))
	fmt.Printf("%-44s %10s\n", "direct, token in the environment (fake op)", ms(d))
	fmt.Printf("%-44s %10.2f\n", "ratio forwarded warm / direct", float64(warm)/float64(d))
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// clean is this process's environment less what would steer rssh or op.
func clean() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "SSH_AUTH_SOCK", "HOME", "PATH", "OP_SERVICE_ACCOUNT_TOKEN", "TMPDIR", "XDG_RUNTIME_DIR",
			"XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "DBUS_SESSION_BUS_ADDRESS", "DISPLAY":
			continue
		}
		out = append(out, kv)
	}
	return out
}
