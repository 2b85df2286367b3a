// Command secret benchmarks the cost of the secret backends and shows that
// the client path does not pay for the 1Password SDK (issue 11,
// acceptance 6), in one run on one machine:
//
//	go run ./bench/secret        # as root on Debian, after scripts/setup
//
// Figures:
//
//   - `rssh bench true` (wall median, peak RSS) for rssh as shipped (no
//     SDK) and rssh built with -tags sdk, alternating; -variant NAME=PATH
//     adds another binary (an rssh from before the change, say).
//   - `rssh secret read` with the op backend (a fake op): the first run
//     and the repeated ones (op has no state, so they cost alike).
//   - the SDK offline (no network to 1Password here; HTTPS_PROXY points at
//     a closed port, so every sign-in fails at once): --backend sdk in a
//     fresh process (the WASM core compiled on every start), and auto (the
//     session's resolver daemon): the first read of a session (daemon
//     start + compile) and repeated reads (daemon warm), and the
//     daemon's peak RSS. The repeated figure is rssh's start and a round
//     trip to the daemon plus the daemon's failed sign-in; a cache hit in
//     the daemon is cheaper still (BenchmarkCacheHit in secret/resolverd).
package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

type variant struct{ name, path string }

func main() {
	runs := flag.Int("n", 20, "runs per client for the `bench true` figure (0 skips it)")
	reads := flag.Int("reads", 10, "runs per `secret read` figure")
	sdkFirst := flag.Int("sdkfirst", 3, "cold SDK starts (each compiles the core: seconds)")
	var variants []variant
	flag.Func("variant", "NAME=PATH: also time `bench true` with the rssh binary at PATH (repeatable)", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=PATH, got %q", v)
		}
		variants = append(variants, variant{name, path})
		return nil
	})
	flag.Parse()
	testenv.RunStandalone("bench-secret", func(tb *testenv.Standalone) error {
		return run(tb, *runs, *reads, *sdkFirst, variants)
	})
}

func run(tb *testenv.Standalone, runs, reads, sdkFirst int, variants []variant) error {
	dir := tb.TempDir()
	plain, err := testenv.BuildRSSH(dir)
	if err != nil {
		return err
	}
	withSDK := filepath.Join(dir, "rssh-sdk")
	if out, err := exec.Command("go", "build", "-tags", "sdk", "-o", withSDK, "github.com/rssh/rssh/cmd/rssh").CombinedOutput(); err != nil {
		return fmt.Errorf("building rssh -tags sdk: %w\n%s", err, out)
	}
	for _, b := range []string{plain, withSDK} {
		st, _ := os.Stat(b)
		fmt.Printf("%-28s %6.1f MB\n", "binary "+filepath.Base(b), float64(st.Size())/1e6)
	}
	fmt.Println()

	if runs > 0 {
		if err := benchTrue(tb, dir, runs, append([]variant{{"rssh (default build)", plain}, {"rssh -tags sdk", withSDK}}, variants...)); err != nil {
			return err
		}
	}
	return benchRead(tb, dir, plain, withSDK, reads, sdkFirst)
}

// benchTrue times `rssh bench true`, the client path, for each binary.
func benchTrue(tb *testenv.Standalone, dir string, runs int, clients []variant) error {
	sshd := testenv.StartSSHD(tb, testenv.SSHDOptions{})
	user := testenv.LoginUser(tb)
	key := testenv.NewKey(tb, dir, "id_ed25519")
	sshd.Authorize(tb, user, key)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(sshd.KnownHostsLine()+"\n"), 0o600)
	cfg := filepath.Join(dir, "ssh_config")
	os.WriteFile(cfg, []byte(sshd.HostBlock("bench", user, key.Path, kh)), 0o600)
	times := map[string][]time.Duration{}
	rss := map[string]int64{}
	for i := 0; i < runs+1; i++ {
		for _, c := range clients {
			d, r, err := timeRun([]string{c.path, "-F", cfg, "bench", "true"}, nil)
			if err != nil {
				return fmt.Errorf("%s bench true: %w", c.name, err)
			}
			if i == 0 {
				continue // warm-up
			}
			times[c.name] = append(times[c.name], d)
			rss[c.name] = max(rss[c.name], r)
		}
	}
	base := testenv.Median(times[clients[0].name])
	fmt.Printf("%-34s %10s %10s %8s\n", "`rssh bench true`", "median", "peak RSS", "ratio")
	for _, c := range clients {
		m := testenv.Median(times[c.name])
		fmt.Printf("%-34s %10s %10s %8.2f\n", c.name, ms(m), mb(rss[c.name]), float64(m)/float64(base))
	}
	fmt.Println()
	return nil
}

// benchRead times `rssh secret read` per backend.
func benchRead(tb *testenv.Standalone, dir, plain, withSDK string, reads, sdkFirst int) error {

	// secret read, op backend (a fake op).
	const ref = "op://SA - bench/GitHub CLI Token/credential"
	op := testenv.NewFakeSecretOp(tb, map[string][]byte{ref: []byte("ghp_benchvalue")})
	opEnv := append(cleanEnv(), "PATH="+op.Dir+":"+os.Getenv("PATH"), "OP_SERVICE_ACCOUNT_TOKEN="+op.Token)
	fmt.Printf("%-34s %10s %10s %10s\n", "`rssh secret read`", "first", "repeated", "peak RSS")
	for _, c := range []variant{{"op backend (fake op)", plain}, {"op backend, -tags sdk build", withSDK}} {
		var first time.Duration
		var rep []time.Duration
		var peak int64
		for i := 0; i < reads+1; i++ {
			d, r, err := timeRun([]string{c.path, "secret", "read", "--backend", "op", ref}, opEnv)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if i == 0 {
				first = d
			} else {
				rep = append(rep, d)
			}
			peak = max(peak, r)
		}
		fmt.Printf("%-34s %10s %10s %10s\n", c.name, ms(first), ms(testenv.Median(rep)), mb(peak))
	}

	// The SDK offline.
	tok := fakeToken()
	sdkEnv := append(cleanEnv(), "OP_SERVICE_ACCOUNT_TOKEN="+tok, "HTTPS_PROXY=http://127.0.0.1:9", "XDG_RUNTIME_DIR="+dir)
	var cold, coldCPU []time.Duration
	var coldRSS int64
	for i := 0; i < sdkFirst; i++ {
		d, r, err := timeRun([]string{withSDK, "secret", "read", "--backend", "sdk", ref}, sdkEnv)
		coldCPU = append(coldCPU, lastCPU)
		if err == nil || !strings.Contains(err.Error(), "cannot reach 1Password") {
			return fmt.Errorf("--backend sdk offline: want a network failure, got %v", err)
		}
		cold = append(cold, d)
		coldRSS = max(coldRSS, r)
	}
	fmt.Printf("%-34s %10s %10s %10s   (CPU %s)\n", "SDK in-process (--backend sdk)", ms(testenv.Median(cold)), "(same)", mb(coldRSS), ms(testenv.Median(coldCPU)))

	var firsts, reps []time.Duration
	var clientRSS, daemonRSS int64
	for s := 0; s < sdkFirst; s++ {
		for i := 0; i < reads+1; i++ {
			d, r, err := timeRun([]string{withSDK, "secret", "read", ref}, sdkEnv)
			if err == nil || !strings.Contains(err.Error(), "cannot reach 1Password") {
				return fmt.Errorf("auto offline: want a network failure, got %v", err)
			}
			if i == 0 {
				firsts = append(firsts, d)
			} else {
				reps = append(reps, d)
			}
			clientRSS = max(clientRSS, r)
		}
		pid := findDaemon(withSDK)
		if pid == 0 {
			return fmt.Errorf("no resolver daemon found after the reads")
		}
		daemonRSS = max(daemonRSS, vmHWM(pid))
		if err := stop(pid); err != nil {
			return err
		}
	}
	fmt.Printf("%-34s %10s %10s %10s\n", "SDK via the resolver (auto)", ms(testenv.Median(firsts)), ms(testenv.Median(reps)), mb(clientRSS))
	fmt.Printf("%-34s %10s %10s %10s\n", "  the resolver daemon itself", "", "", mb(daemonRSS))
	return nil
}

// cleanEnv is this environment without token or proxy variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "OP_SERVICE_ACCOUNT_TOKEN", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "RSSH_SECRET_BACKEND", "XDG_RUNTIME_DIR":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// fakeToken is a token in the real format with made-up keys, for a
// sign-in address under 1password.com that the closed proxy never reaches.
func fakeToken() string {
	return "ops_" + b64(`{"signInAddress":"rssh-bench.1password.com","userAuth":{"method":"SRPg-4096","alg":"PBES2g-HS256","iterations":650000,"salt":"AAAAAAAAAAAAAAAAAAAAAA"},"email":"b@1passwordserviceaccounts.com","srpX":"`+
		strings.Repeat("ab", 32)+`","muk":{"alg":"A256GCM","ext":true,"k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","key_ops":["encrypt","decrypt"],"kty":"oct","kid":"mp"},"secretKey":"A3-ABCDEF-GHJKLM-NPQRS-TVWXY-Z2345-67892","throttleSecret":{"seed":"`+
		strings.Repeat("cd", 32)+`","uuid":"abcdefghjkmnpqrstvwxyz2345"},"deviceUuid":"abcdefghjkmnpqrstvwxyz2345"}`)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// findDaemon is the pid of the resolver daemon of binary bin (started by
// this benchmark's reads), or 0.
func findDaemon(bin string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		if len(argv) > 2 && argv[0] == bin && argv[1] == "secret" && argv[2] == "resolverd" {
			return pid
		}
	}
	return 0
}

// stop ends the daemon and waits (bounded) until it is gone.
func stop(pid int) error {
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || bytes.Contains(b, []byte(") Z ")) {
			return nil
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("resolver daemon %d did not exit on SIGTERM", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling another process's exit
	}
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb
		}
	}
	return 0
}

// lastCPU is the user+system CPU time of timeRun's last process.
var lastCPU time.Duration

// timeRun runs argv (env nil: this one's) and returns its wall time and
// peak RSS in KiB.
func timeRun(argv []string, env []string) (time.Duration, int64, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	var rss int64
	if cmd.ProcessState != nil {
		lastCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
	}
	if err != nil {
		return d, rss, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return d, rss, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func mb(kb int64) string        { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }
