package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

func TestExecOutputAndExitStatus(t *testing.T) {
	w := newWorld(t, "", "")
	if r := w.rssh(nil, "target", "echo", "hello", "world"); r.code != 0 || r.stdout != "hello world\n" {
		t.Fatalf("echo: %s", r)
	}
	for _, status := range []int{0, 7, 255} {
		r := w.rssh(nil, "target", fmt.Sprintf("exit %d", status))
		if r.code != status {
			t.Errorf("exit %d: got %s", status, r)
		}
	}
}

// A remote death by signal: rssh exits as OpenSSH's ssh does, side by side.
func TestExecRemoteSignalMatchesSSH(t *testing.T) {
	w := newWorld(t, "", "")
	for _, cmd := range []string{"kill -9 $$", "kill -TERM $$"} {
		want := w.ssh(nil, "target", cmd)
		got := w.rssh(nil, "target", cmd)
		if got.code != want.code || want.code == 0 {
			t.Errorf("%q: ssh %s\nrssh %s", cmd, want, got)
		}
	}
}

func TestExecStdoutStderrApart(t *testing.T) {
	w := newWorld(t, "", "")
	r := w.rssh(nil, "target", "echo out; echo err >&2; echo out2")
	if r.code != 0 || r.stdout != "out\nout2\n" || r.stderr != "err\n" {
		t.Fatalf("got %s", r)
	}
}

// 32 MiB each way, checked by sha256 on both ends: no byte lost or changed,
// and stdin's EOF reaches the remote command.
func TestExecBulkBothWays(t *testing.T) {
	w := newWorld(t, "", "")
	w.carry("32 MiB", 32<<20, true, func(stdin []byte, args ...string) result {
		return w.rssh(bytes.NewReader(stdin), args...)
	})
}

// A changed host key is refused loudly before authentication: the command
// never runs and the server never sees a signature.
func TestHostKeyMismatchRefused(t *testing.T) {
	w := newWorld(t, "", "")
	other := testenv.NewKey(t, w.dir, "other_host_key")
	w.writeFile("known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n", w.sshd.Port, other.AuthorizedLine()))
	marker := filepath.Join(w.remoteDir(), "ran")
	for _, strict := range []string{"yes", "no", "accept-new"} {
		r := w.rssh(nil, "-o", "StrictHostKeyChecking="+strict, "target", "touch "+marker)
		if r.code != 255 || !strings.Contains(r.stderr, "HOST IDENTIFICATION HAS CHANGED") || !strings.Contains(r.stderr, "rssh: hint: ") {
			t.Errorf("StrictHostKeyChecking=%s: want refusal, got %s", strict, r)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran despite the host key mismatch")
	}
	if log := w.sshd.Log(); strings.Contains(log, "Accepted publickey") || strings.Contains(log, "Postponed publickey") {
		t.Fatal("authentication reached the server despite the mismatch")
	}
	// Control: with the right key known, the same command does create the marker.
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	if r := w.rssh(nil, "target", "touch "+marker); r.code != 0 {
		t.Fatalf("control run: %s", r)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("control run did not create the marker: %v", err)
	}
}

func TestUnknownHostStrictAndAcceptNew(t *testing.T) {
	w := newWorld(t, "", "")
	w.writeFile("known_hosts", "")
	r := w.rssh(nil, "target", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "host key verification failed") {
		t.Fatalf("strict: want refusal, got %s", r)
	}
	r = w.rssh(nil, "-o", "StrictHostKeyChecking=accept-new", "target", "echo ok")
	if r.code != 0 || r.stdout != "ok\n" || !strings.Contains(r.stderr, "Permanently added") {
		t.Fatalf("accept-new: got %s", r)
	}
	kh, _ := os.ReadFile(w.knownHosts)
	if !strings.Contains(string(kh), w.sshd.HostKey.AuthorizedLine()) {
		t.Fatalf("accept-new did not record the key: %q", kh)
	}
	// Recorded in OpenSSH's format: the real ssh now trusts it under strict checking.
	if r := w.ssh(nil, "target", "echo ok"); r.code != 0 {
		t.Fatalf("ssh with the key rssh recorded: %s", r)
	}
	if r := w.rssh(nil, "target", "echo ok"); r.code != 0 {
		t.Fatalf("strict after accept-new: %s", r)
	}
}

// A host known by one key type while the server prefers another must not
// look like a changed key: algorithms known for the host are offered first.
func TestKnownHostAlgorithmOrder(t *testing.T) {
	w := newWorld(t, "", "")
	ecdsa := filepath.Join(w.sshd.Dir, "ssh_host_ecdsa_key")
	if out, err := testenvCmd("ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsa); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	// Restart the world's server with both host keys, ed25519 listed first.
	s := testenv.StartSSHD(t, testenv.SSHDOptions{Extra: "HostKey " + ecdsa})
	w.sshd = s
	s.Authorize(t, w.user, w.key)
	pub, _ := os.ReadFile(ecdsa + ".pub")
	fields := strings.Fields(string(pub))
	w.writeFile("known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.Port, fields[0], fields[1]))
	w.writeConfig("")
	if r := w.rssh(nil, "target", "echo ok"); r.code != 0 {
		t.Fatalf("host known by its ECDSA key: %s", r)
	}
}

func TestAgentOnlyAuth(t *testing.T) {
	w := newWorld(t, "", "")
	agent := testenv.StartAgent(t)
	agent.Add(t, w.key)
	os.Rename(w.key.Path, w.key.Path+".moved") // only the agent holds the private key now
	w.config = w.writeFile("ssh_config", strings.Replace(
		hostBlock("target", w.sshd, w.user, w.key.Path, w.knownHosts, "\tIdentityAgent "+agent.Sock),
		"IdentitiesOnly yes", "IdentitiesOnly no", 1))
	if r := w.rssh(nil, "target", "echo ok"); r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("agent auth: %s", r)
	}
}

// A 1Password agent holds many keys; offered blindly, the server's
// MaxAuthTries (6) runs out before the right one, for ssh as for rssh. With
// IdentitiesOnly and the public key as IdentityFile, only that key is offered.
func TestIdentitiesOnlyWithEightAgentKeys(t *testing.T) {
	w := newWorld(t, "", "")
	agent := testenv.StartAgent(t)
	for i := 0; i < 7; i++ {
		agent.Add(t, testenv.NewKey(t, w.dir, fmt.Sprintf("decoy%d", i)))
	}
	agent.Add(t, w.key)
	os.Remove(w.key.Path)

	w.config = w.writeFile("ssh_config", strings.Replace(
		hostBlock("target", w.sshd, w.user, filepath.Join(w.dir, "no-such-key"), w.knownHosts, "\tIdentityAgent "+agent.Sock),
		"IdentitiesOnly yes", "IdentitiesOnly no", 1))
	if r := w.rssh(nil, "target", "true"); r.code != 255 || !strings.Contains(r.stderr, "Too many authentication failures") {
		t.Fatalf("offering every agent key should exhaust MaxAuthTries: %s", r)
	}
	if r := w.ssh(nil, "target", "true"); r.code != 255 {
		t.Fatalf("OpenSSH should fail the same way: %s", r)
	}
	w.config = w.writeFile("ssh_config",
		hostBlock("target", w.sshd, w.user, w.key.Path+".pub", w.knownHosts, "\tIdentityAgent "+agent.Sock))
	if r := w.rssh(nil, "target", "echo ok"); r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("IdentitiesOnly: %s", r)
	}
	if !strings.Contains(w.sshd.Log(), "Accepted publickey") {
		t.Fatalf("unexpected auth pattern:\n%s", w.sshd.Log())
	}
}

func TestProxyJumpTwoHops(t *testing.T) {
	w := newWorld(t, "", "")
	hop := testenv.StartSSHD(t, testenv.SSHDOptions{})
	hop.Authorize(t, w.user, w.key)
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n"+hop.KnownHostsLine()+"\n")
	w.config = w.writeFile("ssh_config",
		hostBlock("target", w.sshd, w.user, w.key.Path, w.knownHosts, "\tProxyJump hop")+
			hostBlock("hop", hop, w.user, w.key.Path, w.knownHosts, ""))
	r := w.rssh(nil, "target", "echo through")
	if r.code != 0 || r.stdout != "through\n" {
		t.Fatalf("ProxyJump: %s", r)
	}
	if !regexp.MustCompile(fmt.Sprintf(`direct_tcpip: .*target 127\.0\.0\.1 port %d`, w.sshd.Port)).MatchString(hop.Log()) {
		t.Fatalf("the hop's log shows no forwarding to the target:\n%s", hop.Log())
	}
	// -J on the command line, with user@host:port, does the same; that hop
	// is resolved with its own config (here the Host * block).
	w.config = w.writeFile("ssh_config",
		hostBlock("target", w.sshd, w.user, w.key.Path, w.knownHosts, "")+
			hostBlock("*", hop, w.user, w.key.Path, w.knownHosts, ""))
	r = w.rssh(nil, "-J", fmt.Sprintf("%s@127.0.0.1:%d", w.user, hop.Port), "target", "echo again")
	if r.code != 0 || r.stdout != "again\n" {
		t.Fatalf("-J: %s", r)
	}
}

func TestProxyCommand(t *testing.T) {
	testenv.Need(t, "socat", "socat")
	w := newWorld(t, "", "\tProxyCommand socat - TCP:%h:%p")
	if r := w.rssh(nil, "target", "echo piped"); r.code != 0 || r.stdout != "piped\n" {
		t.Fatalf("ProxyCommand: %s", r)
	}
}

// rssh -W serves as OpenSSH's ProxyCommand, the way ProxyJump uses ssh -W.
func TestStdioForwardUnderOpenSSH(t *testing.T) {
	w := newWorld(t, "", "")
	hop := testenv.StartSSHD(t, testenv.SSHDOptions{})
	hop.Authorize(t, w.user, w.key)
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n"+hop.KnownHostsLine()+"\n")
	w.config = w.writeFile("ssh_config",
		hostBlock("target", w.sshd, w.user, w.key.Path, w.knownHosts,
			fmt.Sprintf("\tProxyCommand %s -F %s -W %%h:%%p hop", rsshBin, filepath.Join(w.dir, "ssh_config")))+
			hostBlock("hop", hop, w.user, w.key.Path, w.knownHosts, ""))
	if r := w.ssh(nil, "target", "echo via-rssh"); r.code != 0 || r.stdout != "via-rssh\n" {
		t.Fatalf("ssh through rssh -W: %s", r)
	}
}

// HashKnownHosts yes (Debian's system default) records the new key hashed,
// in a form OpenSSH's ssh then trusts.
func TestAcceptNewHashed(t *testing.T) {
	w := newWorld(t, "", "\tHashKnownHosts yes")
	w.writeFile("known_hosts", "")
	if r := w.rssh(nil, "-o", "StrictHostKeyChecking=accept-new", "target", "true"); r.code != 0 {
		t.Fatalf("accept-new: %s", r)
	}
	kh, _ := os.ReadFile(w.knownHosts)
	if !strings.HasPrefix(string(kh), "|1|") || strings.Contains(string(kh), "127.0.0.1") {
		t.Fatalf("want one hashed line, got %q", kh)
	}
	if r := w.ssh(nil, "target", "true"); r.code != 0 {
		t.Fatalf("ssh with the hashed line rssh wrote: %s", r)
	}
}

// Algorithm lists the user sets are honoured (the server's log names the
// negotiated cipher); unset, x/crypto's AES-GCM-first default applies.
func TestCipherChoice(t *testing.T) {
	w := newWorld(t, "", "")
	if r := w.rssh(nil, "-c", "aes256-ctr", "target", "true"); r.code != 0 {
		t.Fatalf("-c aes256-ctr: %s", r)
	}
	if !strings.Contains(w.sshd.Log(), "cipher: aes256-ctr") {
		t.Fatalf("sshd did not negotiate aes256-ctr:\n%s", w.sshd.Log())
	}
	if r := w.rssh(nil, "target", "true"); r.code != 0 {
		t.Fatalf("default: %s", r)
	}
	if !strings.Contains(w.sshd.Log(), "cipher: aes128-gcm@openssh.com") {
		t.Fatalf("default cipher was not AES-GCM:\n%s", w.sshd.Log())
	}
}
