package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
	"github.com/rssh/rssh/nixbuilder"
)

// The Nix daemon, running as root, builds on a remote builder with the
// user's key through the agent bridge: the user's ssh-agent and the bridge
// run as a non-root user (uid 65534), the daemon's SSH_AUTH_SOCK is the
// bridge socket, root has no ssh config and no known_hosts (the machines
// line from `rssh --bridge --nix-machine` carries the builder's host key),
// and the client's max-jobs = 0 forces the build to be remote. The bridge's
// audit log shows the signature for uid 0; with the bridge stopped the
// build fails (issue 5, acceptance 5). Recipe: ../shared/TESTING.md.
func TestNixRemoteBuildThroughBridge(t *testing.T) {
	nixDaemon := testenv.Need(t, "nix-daemon", "nix-bin")
	nixBuild := testenv.Need(t, "nix-build", "nix-bin")
	testenv.Need(t, "ssh", "openssh-client")
	agentBin := testenv.Need(t, "ssh-agent", "openssh-client")
	other := asOther(t)
	ensureNixbld(t)
	system := map[string]string{"amd64": "x86_64-linux", "arm64": "aarch64-linux"}[runtime.GOARCH]
	if system == "" {
		t.Skipf("no Nix system name for %s", runtime.GOARCH)
	}

	dir := testenv.ShareDir(t)
	rssh := sharedRSSH(t, dir)
	userDir := filepath.Join(dir, "user") // the user's files, owned by the user
	mkdirOwned(t, userDir, 0o755)

	// The builder: the test sshd's root login on the real /nix/store, with
	// its own nix.conf (a fresh machine has none, and Nix's default sandbox
	// has no /bin/sh) and its temp files in here.
	builderConf := filepath.Join(dir, "nix-builder")
	tmp := filepath.Join(dir, "tmp") // every Nix process's TMPDIR: no /tmp/nix-* left behind
	for _, d := range []string{builderConf, tmp} {
		os.MkdirAll(d, 0o755)
	}
	os.Chmod(tmp, 0o1777)
	os.WriteFile(filepath.Join(builderConf, "nix.conf"), []byte("sandbox = false\nsubstituters =\nbuild-users-group = nixbld\n"), 0o644)
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{
		Extra: fmt.Sprintf("SetEnv NIX_CONF_DIR=%s TMPDIR=%s\n", builderConf, tmp),
	})
	key := testenv.NewKey(t, userDir, "id_builder")
	sshd.Authorize(t, "root", key)
	chownOther(t, key.Path)

	// The user's agent, holding the builder key, and the bridge in front of it.
	agentSock := filepath.Join(userDir, "agent.sock")
	agentCmd := exec.Command(other[0], append(other[1:], agentBin, "-D", "-a", agentSock)...)
	agentLog := &syncBuffer{}
	agentCmd.Stdout, agentCmd.Stderr = agentLog, agentLog
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { agentCmd.Wait(); close(agentDone) }()
	t.Cleanup(func() { agentCmd.Process.Kill(); <-agentDone })
	if err := testenv.WaitSocket(agentSock, agentDone, 10*time.Second); err != nil {
		t.Fatalf("ssh-agent: %v\n%s", err, agentLog.String())
	}
	userEnv := []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + userDir, "SSH_AUTH_SOCK=" + agentSock}
	if r := runCmd(t, userEnv, append(other, "ssh-add", key.Path)...); r.err != nil {
		t.Fatalf("ssh-add as the user: %v\n%s", r.err, r.out)
	}
	bridgeDir := filepath.Join(dir, "bridge")
	mkdirOwned(t, bridgeDir, 0o711)
	bridgeSock := filepath.Join(bridgeDir, "bridge.sock")
	hostFP := fp(sshd.HostKey.PublicKey)
	bridge := startBridge(t, userEnv, append(append([]string{}, other...), rssh), bridgeSock,
		"--upstream", agentSock, "--allow-host-key", hostFP, "--log-format", "json")

	// The user's view of the builder, and the machines line from it.
	kh := filepath.Join(userDir, "known_hosts")
	writeOwned(t, kh, sshd.KnownHostsLine()+"\n")
	userConfig := filepath.Join(userDir, "ssh_config")
	writeOwned(t, userConfig, fmt.Sprintf("Host builder\n\tHostName 127.0.0.1\n\tPort %d\n\tUser root\n\tUserKnownHostsFile %s\n", sshd.Port, kh))
	r := runCmd(t, userEnv, append(other, rssh, "--bridge", "-F", userConfig, "--nix-machine", "builder", "--system", system, "--max-jobs", "4")...)
	if r.err != nil {
		t.Fatalf("--nix-machine: %v\n%s", r.err, r.out)
	}
	line, note, _ := strings.Cut(r.out, "\n")
	wantLine := fmt.Sprintf("ssh://root@127.0.0.1 %s - 4 1 - - ", system)
	if !strings.HasPrefix(line, wantLine) || !strings.Contains(note, fmt.Sprintf(`NIX_SSHOPTS="-p %d"`, sshd.Port)) {
		t.Fatalf("--nix-machine printed %q, want a line starting %q and a note about the port", r.out, wantLine)
	}

	// The Nix daemon as root, in a chroot store; its ssh gets the port from
	// NIX_SSHOPTS, as the helper said, and no config file at all.
	nixDir := filepath.Join(dir, "nix")
	for _, d := range []string{"conf", "client-conf", "root", "home"} {
		os.MkdirAll(filepath.Join(nixDir, d), 0o755)
	}
	machines := filepath.Join(nixDir, "machines")
	os.WriteFile(machines, []byte(line+"\n"), 0o644)
	os.WriteFile(filepath.Join(nixDir, "conf", "nix.conf"), []byte(fmt.Sprintf(`store = local?root=%s
build-users-group = nixbld
sandbox = false
experimental-features = nix-command
trusted-users = root
max-jobs = 0
builders = @%s
substituters =
builders-use-substitutes = false
`, filepath.Join(nixDir, "root"), machines)), 0o644)
	os.WriteFile(filepath.Join(nixDir, "client-conf", "nix.conf"), []byte("store = daemon\nmax-jobs = 0\nsubstituters =\n"), 0o644)
	daemonSock := filepath.Join(nixDir, "daemon.sock")
	daemon := exec.Command(nixDaemon)
	daemon.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + filepath.Join(nixDir, "home"), "TMPDIR=" + tmp,
		"NIX_CONF_DIR=" + filepath.Join(nixDir, "conf"), "NIX_DAEMON_SOCKET_PATH=" + daemonSock,
		"SSH_AUTH_SOCK=" + bridgeSock,
		fmt.Sprintf("NIX_SSHOPTS=-F /dev/null -p %d -o IdentityFile=none -o BatchMode=yes", sshd.Port)}
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers and their ssh go with it
	daemonLog := &syncBuffer{}
	daemon.Stdout, daemon.Stderr = daemonLog, daemonLog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	daemonDone := make(chan struct{})
	go func() { daemon.Wait(); close(daemonDone) }()
	t.Cleanup(func() {
		syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL)
		<-daemonDone
		if t.Failed() {
			t.Logf("nix-daemon log:\n%s", daemonLog.String())
		}
	})
	if err := testenv.WaitSocket(daemonSock, daemonDone, 20*time.Second); err != nil {
		t.Fatalf("nix-daemon: %v\n%s", err, daemonLog.String())
	}

	drv := filepath.Join(nixDir, "hello.nix")
	os.WriteFile(drv, []byte(`{ salt }: derivation {
  name = "rssh-bridge-${salt}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo ${salt} > $out" ];
}
`), 0o644)
	build := func() (string, error) {
		salt := make([]byte, 8)
		rand.Read(salt)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, nixBuild, drv, "--argstr", "salt", hex.EncodeToString(salt), "--no-out-link")
		cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + filepath.Join(nixDir, "home"), "TMPDIR=" + tmp,
			"NIX_CONF_DIR=" + filepath.Join(nixDir, "client-conf"), "NIX_DAEMON_SOCKET_PATH=" + daemonSock}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		if ctx.Err() != nil {
			err = fmt.Errorf("nix-build timed out: %w", ctx.Err())
		}
		return out.String(), err
	}

	out, err := build()
	if err != nil {
		t.Fatalf("nix-build through the bridge: %v\n%s", err, out)
	}
	if !strings.Contains(out, "/nix/store/") {
		t.Fatalf("nix-build printed no store path:\n%s", out)
	}
	bridge.wantAudit(map[string]any{"op": "sign", "decision": "allowed", "result": "signed", "uid": 0, "cmd": "ssh",
		"key": fp(key.PublicKey), "host_key": hostFP})
	if log := sshd.Log(); !strings.Contains(log, "Accepted publickey for root") {
		t.Fatalf("the builder saw no login for root")
	}

	// rssh doctor sees the same chain: the bridge (run by the user, root
	// allowed), the builders, the daemon's SSH_AUTH_SOCK at the bridge and
	// the machines line's host key equal to the user's known_hosts. Each
	// broken link is its own failing check (issue 14, doctor).
	// The machines line names the builder by address, so its key is looked
	// up as ssh would for that name (root's ~ is /root, which tests leave
	// alone: the config names the file for the address).
	f, err := os.OpenFile(userConfig, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "Host 127.0.0.1\n\tUserKnownHostsFile %s\n", kh)
	f.Close()
	doctorEnv := []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + userDir, "TMPDIR=" + tmp,
		"NIX_CONF_DIR=" + filepath.Join(nixDir, "conf"), "NIX_DAEMON_SOCKET_PATH=" + daemonSock}
	doctor := func(env []string, checks ...string) {
		t.Helper()
		check := strings.Join(checks, ", ")
		r := runCmd(t, env, rssh, "doctor", "--nix", "--bridge-socket", bridgeSock, "-F", userConfig)
		for _, name := range []string{"bridge", "nix builders", "nix trusted-users", "nix daemon", "nix 127.0.0.1"} {
			line := ""
			for _, l := range strings.Split(r.out, "\n") {
				if strings.Contains(l, " "+name+": ") {
					line = l
				}
			}
			want := "✓ "
			if slices.Contains(checks, name) {
				want = "✗ "
			}
			if !strings.HasPrefix(line, want) {
				t.Errorf("doctor, %s broken: check %q is %q, want %q\n%s", map[bool]string{true: check, false: "nothing"}[check != ""], name, line, want, r.out)
			}
		}
		if (r.err == nil) != (check == "") {
			t.Errorf("doctor, %q broken: %v\n%s", check, r.err, r.out)
		}
	}
	doctor(doctorEnv, "")
	// A machines line whose host key is not the user's known one.
	wrongKey := testenv.NewKey(t, nixDir, "not_the_host_key")
	badConf := filepath.Join(nixDir, "bad-conf")
	os.MkdirAll(badConf, 0o755)
	os.WriteFile(filepath.Join(nixDir, "bad-machines"), []byte(strings.Replace(line, nixbuilder.EncodeHostKey(sshd.HostKey.PublicKey), nixbuilder.EncodeHostKey(wrongKey.PublicKey), 1)+"\n"), 0o644)
	os.WriteFile(filepath.Join(badConf, "nix.conf"), []byte("builders = @"+filepath.Join(nixDir, "bad-machines")+"\n"), 0o644)
	doctor(replaceEnv(doctorEnv, "NIX_CONF_DIR", badConf), "nix 127.0.0.1")
	// A daemon socket served by a process whose SSH_AUTH_SOCK is not the
	// bridge (this test binary stands in for such a daemon).
	fakeDaemon := filepath.Join(nixDir, "fake-daemon.sock")
	l, err := net.Listen("unix", fakeDaemon)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// Without the daemon's NIX_SSHOPTS the builder's port is unknown, so
	// the key is looked up on port 22, where known_hosts has none.
	doctor(replaceEnv(doctorEnv, "NIX_DAEMON_SOCKET_PATH", fakeDaemon), "nix daemon", "nix 127.0.0.1")

	// With the bridge stopped, root's ssh has no key: the build fails.
	bridge.stop(syscall.SIGTERM)
	doctor(doctorEnv, "bridge")
	out, err = build()
	if err == nil {
		t.Fatalf("nix-build succeeded with the bridge stopped:\n%s", out)
	}
	if !strings.Contains(out, "Permission denied (publickey)") {
		t.Fatalf("nix-build with the bridge stopped failed for another reason than authentication: %v\n%s", err, out)
	}
}

// ensureNixbld makes the nixbld group and users that
// `build-users-group = nixbld` needs, if the nix-bin package did not. It
// changes nothing when they exist.
func ensureNixbld(t *testing.T) {
	t.Helper()
	if _, err := user.LookupGroup("nixbld"); err != nil {
		if out, err := exec.Command("groupadd", "--system", "nixbld").CombinedOutput(); err != nil {
			if _, lerr := user.LookupGroup("nixbld"); lerr != nil {
				t.Fatalf("groupadd nixbld: %v\n%s", err, out)
			}
		}
	}
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("nixbld%d", i)
		if _, err := user.Lookup(name); err == nil {
			continue
		}
		out, err := exec.Command("useradd", "--system", "-g", "nixbld", "-G", "nixbld", "-M", "-d", "/var/empty",
			"-s", "/usr/sbin/nologin", name).CombinedOutput()
		if _, lerr := user.Lookup(name); err != nil && lerr != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	}
}

func chownOther(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
}

func mkdirOwned(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
	chownOther(t, path)
}

func writeOwned(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	chownOther(t, path)
}
