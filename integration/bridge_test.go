package integration

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

// otherUID is "another local user" in these tests: nobody on Debian.
const otherUID = 65534

// bridgeProc is `rssh --bridge …` running as a process the test started.
type bridgeProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	sock string
	log  *syncBuffer
	done chan struct{}
	err  error
}

// startBridge starts `rssh --bridge --listen sock args…` with env, as
// argv0 (the rssh binary, or setpriv … rssh to run it as another user), and
// waits until the socket answers. The test's cleanup stops it with SIGTERM
// if it still runs, and checks that it exited 0 and removed its socket.
func startBridge(t *testing.T, env []string, prefix []string, sock string, args ...string) *bridgeProc {
	t.Helper()
	argv := append(append(append([]string{}, prefix...), "--bridge", "--listen", sock), args...)
	p := &bridgeProc{t: t, sock: sock, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout = p.log // nothing is expected there; it would show in the log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the bridge: %v", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("bridge log:\n%s", p.log.String())
		}
	})
	if err := testenv.WaitSocket(sock, p.done, 10*time.Second); err != nil {
		t.Fatalf("bridge: %v\n%s", err, p.log.String())
	}
	return p
}

// stop signals the bridge and waits (bounded) for it; it must exit 0 and
// leave no socket behind.
func (p *bridgeProc) stop(sig syscall.Signal) {
	p.t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("the bridge did not exit within 10s of %v", sig)
		return
	}
	if p.err != nil {
		p.t.Errorf("the bridge exited with %v after %v\n%s", p.err, sig, p.log.String())
	}
	if _, err := os.Lstat(p.sock); err == nil {
		p.t.Errorf("the bridge left its socket %s behind after %v", p.sock, sig)
	}
}

// wantAudit waits (bounded) for an audit line with every field of want (see
// testenv.JSONMatches).
func (p *bridgeProc) wantAudit(want map[string]any) map[string]any {
	p.t.Helper()
	return testenv.WantJSONLine(p.t, p.log.String, want)
}

// sharedRSSH is a copy of the rssh binary that other users may run.
func sharedRSSH(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(rsshBin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "rssh")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// asOther is the argv prefix that runs a command as uid/gid 65534.
func asOther(t *testing.T) []string {
	t.Helper()
	bin := testenv.Need(t, "setpriv", "util-linux")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run commands as another user")
	}
	return []string{bin, fmt.Sprintf("--reuid=%d", otherUID), fmt.Sprintf("--regid=%d", otherUID), "--clear-groups"}
}

type cmdResult struct {
	out string
	pid int
	err error
}

// runCmd runs argv with env and a 30 s bound, output combined.
func runCmd(t *testing.T, env []string, argv ...string) cmdResult {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	return cmdResult{out.String(), cmd.Process.Pid, err}
}

func fp(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// The daemon through the CLI: flags wire through to policy, real ssh-add
// and ssh as the owner and as uid 65534, audit lines, clean exit on SIGTERM
// and SIGINT (issue 5, acceptance 1 and 2).
func TestBridgeDaemonCLI(t *testing.T) {
	testenv.Need(t, "ssh", "openssh-client")
	testenv.Need(t, "ssh-add", "openssh-client")
	prefixOther := asOther(t)
	dir := testenv.ShareDir(t)
	agent := testenv.StartAgent(t)
	k1 := testenv.NewKey(t, dir, "k1")
	k2 := testenv.NewKey(t, dir, "k2")
	agent.Add(t, k1, k2)
	user := testenv.LoginUser(t)
	allowed := testenv.StartSSHD(t, testenv.SSHDOptions{})
	other := testenv.StartSSHD(t, testenv.SSHDOptions{})
	allowed.Authorize(t, user, k1)
	other.Authorize(t, user, k1)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(allowed.KnownHostsLine()+"\n"+other.KnownHostsLine()+"\n"), 0o644)
	env := append(cleanEnv(), "HOME="+dir, "SSH_AUTH_SOCK="+agent.Sock)
	sshTo := func(s *testenv.SSHD, sock string) []string {
		return []string{"ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentityAgent=" + sock,
			"-p", fmt.Sprint(s.Port), user + "@127.0.0.1", "echo", "logged-in"}
	}
	upstreamKeys := func() string {
		r := runCmd(t, env, "ssh-add", "-l")
		return r.out
	}
	before := upstreamKeys()

	b := startBridge(t, env, []string{rsshBin}, filepath.Join(dir, "b1", "bridge.sock"),
		"--allow-uid", fmt.Sprint(otherUID), "--allow-key", fp(k1.PublicKey),
		"--allow-host-key", fp(allowed.HostKey.PublicKey), "--log-format", "json", "-v")
	benv := append(cleanEnv(), "HOME="+dir, "SSH_AUTH_SOCK="+b.sock)

	t.Run("owner lists every key and logs in anywhere", func(t *testing.T) {
		r := runCmd(t, benv, "ssh-add", "-l")
		if r.err != nil || !strings.Contains(r.out, fp(k1.PublicKey)) || !strings.Contains(r.out, fp(k2.PublicKey)) {
			t.Fatalf("owner ssh-add -l: %v\n%s", r.err, r.out)
		}
		for _, s := range []*testenv.SSHD{allowed, other} {
			if r := runCmd(t, benv, sshTo(s, b.sock)...); r.err != nil || !strings.Contains(r.out, "logged-in") {
				t.Fatalf("owner ssh through the bridge: %v\n%s", r.err, r.out)
			}
		}
		b.wantAudit(map[string]any{"op": "sign", "decision": "allowed", "result": "signed", "uid": os.Getuid(),
			"cmd": "ssh", "key": fp(k1.PublicKey), "host_key": fp(other.HostKey.PublicKey), "reason": "owner"})
	})

	t.Run("uid 65534 sees --allow-key keys and logs in to --allow-host-key hosts only", func(t *testing.T) {
		r := runCmd(t, benv, append(prefixOther, "ssh-add", "-l")...)
		if r.err != nil || !strings.Contains(r.out, fp(k1.PublicKey)) || strings.Contains(r.out, fp(k2.PublicKey)) {
			t.Fatalf("uid %d ssh-add -l should list k1 only: %v\n%s", otherUID, r.err, r.out)
		}
		b.wantAudit(map[string]any{"op": "list", "uid": otherUID, "pid": r.pid, "cmd": "ssh-add", "keys": 1, "hidden": 1})

		r = runCmd(t, benv, append(prefixOther, sshTo(allowed, b.sock)...)...)
		if r.err != nil || !strings.Contains(r.out, "logged-in") {
			t.Fatalf("uid %d ssh to the allowed host: %v\n%s", otherUID, r.err, r.out)
		}
		// Acceptance 2: uid, pid, command, key, host key and decision on one line.
		b.wantAudit(map[string]any{"msg": "audit", "op": "sign", "decision": "allowed", "result": "signed",
			"uid": otherUID, "pid": r.pid, "cmd": "ssh", "key": fp(k1.PublicKey), "host_key": fp(allowed.HostKey.PublicKey)})

		r = runCmd(t, benv, append(prefixOther, sshTo(other, b.sock)...)...)
		if r.err == nil {
			t.Fatalf("uid %d logged in to a host not in --allow-host-key:\n%s", otherUID, r.out)
		}
		b.wantAudit(map[string]any{"op": "sign", "decision": "refused", "uid": otherUID, "pid": r.pid, "cmd": "ssh",
			"key": fp(k1.PublicKey), "host_key": fp(other.HostKey.PublicKey), "reason": "host key not in --allow-host-key"})
	})

	t.Run("ssh-add -D, KEY, -x change nothing upstream", func(t *testing.T) {
		k3 := testenv.NewKey(t, dir, "k3")
		askpass := filepath.Join(dir, "askpass")
		os.WriteFile(askpass, []byte("#!/bin/sh\necho pw\n"), 0o755)
		aenv := append(benv, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
		for _, prefix := range [][]string{nil, prefixOther} {
			for _, args := range [][]string{{"-D"}, {k3.Path}, {"-x"}} {
				if r := runCmd(t, aenv, append(append(prefix, "ssh-add"), args...)...); r.err == nil {
					t.Errorf("%v ssh-add %v through the bridge succeeded:\n%s", prefix, args, r.out)
				}
			}
		}
		if after := upstreamKeys(); after != before {
			t.Errorf("upstream keys changed:\nbefore %s\nafter  %s", before, after)
		}
		for _, op := range []string{"remove-all", "lock"} {
			b.wantAudit(map[string]any{"op": op, "decision": "refused", "uid": otherUID})
			b.wantAudit(map[string]any{"op": op, "decision": "refused", "uid": os.Getuid()})
		}
		b.wantAudit(map[string]any{"op": "add", "decision": "refused", "uid": os.Getuid()})
	})

	t.Run("SIGTERM stops it cleanly", func(t *testing.T) {
		b.stop(syscall.SIGTERM)
		if !strings.Contains(b.log.String(), `"msg":"agent bridge stopped"`) {
			t.Errorf("no stop line:\n%s", b.log.String())
		}
	})

	t.Run("without --allow-uid 65534 is refused; text audit lines; SIGINT", func(t *testing.T) {
		b2 := startBridge(t, env, []string{rsshBin}, filepath.Join(dir, "b2", "bridge.sock"))
		r := runCmd(t, benv, append(prefixOther, "env", "SSH_AUTH_SOCK="+b2.sock, "ssh-add", "-l")...)
		if r.err == nil {
			t.Fatalf("uid %d listed keys through a bridge that does not allow it:\n%s", otherUID, r.out)
		}
		want := fmt.Sprintf("uid=%d pid=%d cmd=ssh-add op=connect decision=refused reason=\"uid %d is not allowed\"", otherUID, r.pid, otherUID)
		if !b2.log.WaitFor(want, 5*time.Second) {
			t.Fatalf("no text audit line %q in:\n%s", want, b2.log.String())
		}
		b2.stop(syscall.SIGINT)
	})
}

// Bad flags and a second bridge on a live socket fail in rssh's voice with
// exit 255 (issue 5, the daemon's errors).
func TestBridgeDaemonErrors(t *testing.T) {
	dir := testenv.ShareDir(t)
	agent := testenv.StartAgent(t)
	env := append(cleanEnv(), "HOME="+dir, "SSH_AUTH_SOCK="+agent.Sock)
	b := startBridge(t, env, []string{rsshBin}, filepath.Join(dir, "b", "bridge.sock"))
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"already running", []string{"--listen", b.sock}, []string{"rssh: listen " + b.sock + ": already running", "rssh: hint: another rssh --bridge"}},
		{"bad fingerprint", []string{"--listen", filepath.Join(dir, "x.sock"), "--allow-key", "MD5:00"}, []string{"rssh: bridge: --allow-key \"MD5:00\""}},
		{"bad uid", []string{"--allow-uid", "root"}, []string{"rssh: --bridge: invalid value \"root\"", "usage: rssh --bridge"}},
		{"relay flag on the daemon", []string{"-F", "/dev/null"}, []string{"rssh: --bridge: -F does not apply to the daemon"}},
		{"daemon flag on the relay", []string{"--allow-uid", "0", "host", "22"}, []string{"rssh: --bridge: --allow-uid does not apply to the relay"}},
		{"relative listen", []string{"--listen", "bridge.sock"}, []string{"not an absolute path"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, env, append([]string{rsshBin, "--bridge"}, c.args...)...)
			ee, ok := r.err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 255 {
				t.Fatalf("want exit 255, got %v\n%s", r.err, r.out)
			}
			for _, w := range c.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
		})
	}
	if err := testenv.WaitSocket(b.sock, b.done, time.Second); err != nil {
		t.Errorf("the running bridge stopped answering after another tried its socket: %v", err)
	}
}

// --print-service prints a launchd plist and a systemd user unit that run
// this binary with the daemon flags given (issue 5, service files).
func TestBridgePrintService(t *testing.T) {
	dir := testenv.ShareDir(t)
	env := append(cleanEnv(), "HOME="+dir)
	flags := []string{"--listen", "/Users/me/Library/Application Support/rssh/bridge.sock", "--allow-uid", "0",
		"--allow-host-key", "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", "-v"}

	r := runCmd(t, env, append(append([]string{rsshBin, "--bridge"}, flags...), "--print-service", "launchd")...)
	if r.err != nil {
		t.Fatalf("launchd: %v\n%s", r.err, r.out)
	}
	// A plist is XML with the program arguments in one array.
	dec := xml.NewDecoder(strings.NewReader(r.out))
	var args []string
	inArray := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the plist is not XML: %v\n%s", err, r.out)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			inArray = inArray || tok.Name.Local == "array"
		case xml.EndElement:
			if tok.Name.Local == "array" {
				inArray = false
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); inArray && s != "" {
				args = append(args, s)
			}
		}
	}
	want := append([]string{rsshBin, "--bridge"}, flags...)
	if fmt.Sprint(args) != fmt.Sprint(want) {
		t.Errorf("ProgramArguments = %q\nwant %q", args, want)
	}
	for _, s := range []string{"<key>Label</key>", "<string>com.github.rssh.bridge</string>", "<key>KeepAlive</key>", filepath.Join(dir, "Library/Logs/rssh-bridge.log")} {
		if !strings.Contains(r.out, s) {
			t.Errorf("plist lacks %q:\n%s", s, r.out)
		}
	}

	r = runCmd(t, env, append(append([]string{rsshBin, "--bridge"}, flags...), "--print-service", "systemd")...)
	if r.err != nil {
		t.Fatalf("systemd: %v\n%s", r.err, r.out)
	}
	wantExec := "ExecStart=" + rsshBin + ` --bridge --listen "/Users/me/Library/Application Support/rssh/bridge.sock" --allow-uid 0 --allow-host-key SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU -v` + "\n"
	for _, s := range []string{"[Service]\n", wantExec, "Restart=on-failure", "WantedBy=default.target"} {
		if !strings.Contains(r.out, s) {
			t.Errorf("unit lacks %q:\n%s", s, r.out)
		}
	}
	// A flag the bridge would refuse is refused now, not at service start.
	r = runCmd(t, env, rsshBin, "--bridge", "--allow-host-key", "SHA256:short", "--print-service", "systemd")
	if r.err == nil || !strings.HasPrefix(r.out, "rssh: ") {
		t.Errorf("bad flag with --print-service: %v\n%s", r.err, r.out)
	}
}
