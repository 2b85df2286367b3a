// Command mux measures connection sharing in one run against the same
// throwaway sshd: a repeat `HOST true` through rssh's master (rssh -S)
// next to `ssh HOST true` through an OpenSSH master (ssh -S), alternating
// the two so that machine noise hits both alike, and the first,
// master-creating run (ControlMaster auto, ControlPersist yes) next to a
// plain rssh connect, and what each case of OpenSSH's forward-control test
// costs either client (a -f ControlPersist master with a -L started, then
// -O exit until it is gone). It prints medians, the ratios and the targets:
//
//	go run ./bench/mux        # as root on Debian, after scripts/setup
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

func main() {
	runs := flag.Int("n", 40, "runs per figure")
	hold := flag.Duration("hold", 0, "keep both masters up this long after printing how to reach them, for profiling by hand")
	flag.Parse()
	testenv.RunStandalone("bench-mux", func(tb *testenv.Standalone) error { return run(tb, *runs, *hold) })
}

func run(tb *testenv.Standalone, runs int, hold time.Duration) error {
	dir := tb.TempDir()
	rssh, err := testenv.BuildRSSH(dir)
	if err != nil {
		return err
	}
	ssh := testenv.Need(tb, "ssh", "openssh-client")
	hello, err := buildHello(dir)
	if err != nil {
		return err
	}
	sshd := testenv.StartSSHD(tb, testenv.SSHDOptions{LogLevel: "INFO"})
	user := testenv.LoginUser(tb)
	key := testenv.NewKey(tb, dir, "id_ed25519")
	sshd.Authorize(tb, user, key)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(sshd.KnownHostsLine()+"\n"), 0o600)
	cfg := filepath.Join(dir, "ssh_config")
	os.WriteFile(cfg, []byte(sshd.HostBlock("bench", user, key.Path, kh)), 0o600)
	sockDir, err := os.MkdirTemp("", "bench-mux-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(sockDir)
	osock, rsock := filepath.Join(sockDir, "ossh"), filepath.Join(sockDir, "rssh")

	for _, m := range []struct{ bin, sock string }{{ssh, osock}, {rssh, rsock}} {
		cmd := exec.Command(m.bin, "-F", cfg, "-M", "-S", m.sock, "-N", "bench")
		if err := cmd.Start(); err != nil {
			return err
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		defer func() { cmd.Process.Kill(); <-exited }()
		if err := testenv.WaitSocket(m.sock, exited, 20*time.Second); err != nil {
			return fmt.Errorf("%s master: %w", m.bin, err)
		}
	}
	if hold > 0 {
		fmt.Printf("rssh=%s\nssh=%s\ncfg=%s\nrsock=%s\nosock=%s\n", rssh, ssh, cfg, rsock, osock)
		time.Sleep(hold)
		return nil
	}
	fmt.Printf("connection sharing, sshd on %s, login %s, %d runs\n\n", sshd.Addr, user, runs)

	shared := map[string][]time.Duration{}
	for i := 0; i <= runs; i++ {
		for name, argv := range map[string][]string{
			"rssh -S (rssh master)":    {rssh, "-F", cfg, "-S", rsock, "bench", "true"},
			"ssh -S (OpenSSH master)":  {ssh, "-F", cfg, "-S", osock, "bench", "true"},
			"ssh -S (rssh master)":     {ssh, "-F", cfg, "-S", rsock, "bench", "true"},
			"rssh -S (OpenSSH master)": {rssh, "-F", cfg, "-S", osock, "bench", "true"},
			"rssh -V":                  {rssh, "-V"},
			"ssh -V":                   {ssh, "-V"},
			"hello":                    {hello},
		} {
			d, err := timeRun(argv)
			if err != nil {
				return fmt.Errorf("%v: %w", argv, err)
			}
			if i > 0 {
				shared[name] = append(shared[name], d)
			}
		}
	}
	first := map[string][]time.Duration{}
	n := max(runs/4, 5)
	for i := 0; i <= n; i++ {
		sock := filepath.Join(sockDir, fmt.Sprintf("first%d", i))
		d, err := timeRun([]string{rssh, "-F", cfg, "-o", "ControlMaster=auto", "-o", "ControlPersist=yes", "-S", sock, "bench", "true"})
		if err != nil {
			return fmt.Errorf("master-creating run: %w", err)
		}
		exec.Command(rssh, "-F", cfg, "-S", sock, "-O", "exit", "bench").Run()
		p, err := timeRun([]string{rssh, "-F", cfg, "-S", "none", "bench", "true"})
		if err != nil {
			return fmt.Errorf("plain run: %w", err)
		}
		if i > 0 {
			first["rssh, creating the master"] = append(first["rssh, creating the master"], d)
			first["rssh, plain connect"] = append(first["rssh, plain connect"], p)
		}
	}
	persist, err := persistCycle(ssh, rssh, cfg, sockDir, n)
	if err != nil {
		return err
	}
	names := []string{"rssh -S (rssh master)", "ssh -S (OpenSSH master)", "ssh -S (rssh master)", "rssh -S (OpenSSH master)"}
	for _, name := range names {
		fmt.Printf("  %-28s median %s\n", name, ms(testenv.Median(shared[name])))
	}
	for _, name := range []string{"rssh, creating the master", "rssh, plain connect"} {
		fmt.Printf("  %-28s median %s\n", name, ms(testenv.Median(first[name])))
	}
	mine, theirs := testenv.Median(shared[names[0]]), testenv.Median(shared[names[1]])
	rstart, ostart := testenv.Median(shared["rssh -V"]), testenv.Median(shared["ssh -V"])
	// Starting the process is most of a repeat run: the master's own part
	// (channel, exec, exit status) is what is left once it is taken away.
	fmt.Printf("  %-28s median %s (ssh -V %s); beyond it: rssh %s, ssh %s\n", "process start, rssh -V", ms(rstart), ms(ostart), ms(mine-rstart), ms(theirs-ostart))
	// The least any Go client could take here: starting a Go program that
	// does nothing, plus what the master and sshd take beyond ssh's start.
	floor := testenv.Median(shared["hello"]) + theirs - ostart
	fmt.Printf("  %-28s median %s; floor for a Go client %s (ratio %.2f)\n", "Go hello world", ms(testenv.Median(shared["hello"])), ms(floor), float64(floor)/float64(theirs))
	ratio := float64(mine) / float64(theirs)
	fr := float64(testenv.Median(first["rssh, creating the master"])) / float64(testenv.Median(first["rssh, plain connect"]))
	fmt.Printf("\nrepeat HOST true through its master: rssh %s vs ssh %s, ratio %.2f (targets: <= 15 ms, <= 0.70) %s\n",
		ms(mine), ms(theirs), ratio, verdict(mine <= 15*time.Millisecond && ratio <= 0.7))
	fmt.Printf("first, master-creating run vs plain rssh connect: ratio %.2f (target: no slower) %s\n", fr, verdict(fr <= 1.05))
	fmt.Printf("\n-M -o ControlPersist=yes -f -L PORT:… HOST true, then -O exit (OpenSSH's forward-control, per case):\n")
	for _, name := range []string{"ssh", "rssh"} {
		fmt.Printf("  %-5s -f start median %s, -O exit to master gone median %s\n", name, ms(testenv.Median(persist[name+" start"])), ms(testenv.Median(persist[name+" exit"])))
	}
	pr := float64(testenv.Median(persist["rssh start"])) / float64(testenv.Median(persist["ssh start"]))
	fmt.Printf("-f ControlPersist start, rssh vs ssh: ratio %.2f (target: no slower) %s\n", pr, verdict(pr <= 1.05))
	return nil
}

// buildHello builds a Go program that only writes a line, in its own module.
func buildHello(dir string) (string, error) {
	src := filepath.Join(dir, "hello")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n"), 0o644)
	bin := filepath.Join(dir, "hello-bin")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the hello world: %w\n%s", err, out)
	}
	return bin, nil
}

// persistCycle times, for ssh and rssh in turn, what each case of OpenSSH's
// forward-control test does: start a ControlPersist master with -f and a
// local forward (the time until -f returns), then -O exit and wait until
// the master's process is gone.
func persistCycle(ssh, rssh, cfg, sockDir string, n int) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	for i := 0; i <= n; i++ {
		for name, bin := range map[string]string{"ssh": ssh, "rssh": rssh} {
			sock := filepath.Join(sockDir, fmt.Sprintf("p%s%d", name, i))
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			port := l.Addr().(*net.TCPAddr).Port
			l.Close()
			start, err := timeRun([]string{bin, "-F", cfg, "-L", fmt.Sprintf("%d:127.0.0.1:9", port), "-o", "ExitOnForwardFailure=yes",
				"-M", "-S", sock, "-o", "ControlPersist=yes", "-f", "bench", "true"})
			if err != nil {
				return nil, fmt.Errorf("%s -f ControlPersist: %w", name, err)
			}
			check, _ := exec.Command(bin, "-F", cfg, "-S", sock, "-O", "check", "bench").CombinedOutput()
			pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(string(check)), "Master running (pid="), ")"))
			if pid <= 0 {
				return nil, fmt.Errorf("%s -O check: %q", name, check)
			}
			t0 := time.Now()
			if out, err := exec.Command(bin, "-F", cfg, "-S", sock, "-O", "exit", "bench").CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%s -O exit: %v: %s", name, err, out)
			}
			for syscall.Kill(pid, 0) == nil {
				if time.Since(t0) > 20*time.Second {
					return nil, fmt.Errorf("%s master %d still running 20 s after -O exit", name, pid)
				}
				time.Sleep(2 * time.Millisecond)
			}
			if i > 0 {
				out[name+" start"] = append(out[name+" start"], start)
				out[name+" exit"] = append(out[name+" exit"], time.Since(t0))
			}
		}
	}
	return out, nil
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

func timeRun(argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	return time.Since(start), nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
