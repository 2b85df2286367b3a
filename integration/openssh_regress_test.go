package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// These tests hold, against the real sshd, the fixes OpenSSH's own
// regression suite found (scripts/regress runs that suite with rssh as the
// client). Each names the LTEST it stands for.

// hostkey-agent: a server that offers only an ssh-rsa (SHA-1) host key is
// reached when HostKeyAlgorithms names ssh-rsa, as with ssh; x/crypto keeps
// ssh-rsa out of its supported list, so rssh used to offer nothing the
// server had ("no common algorithm for host key").
func TestHostKeyAlgorithmsSSHRSA(t *testing.T) {
	keygen := testenv.Need(t, "ssh-keygen", "openssh-client")
	dir := t.TempDir()
	rsaKey := filepath.Join(dir, "ssh_host_rsa_key")
	if out, err := exec.Command(keygen, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsaKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(rsaKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: t.TempDir()}
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Extra: "HostKey " + rsaKey + "\nHostKeyAlgorithms ssh-rsa"})
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.sshd.Authorize(t, w.user, w.key)
	w.knownHosts = w.writeFile("known_hosts", "[127.0.0.1]:"+strconv.Itoa(w.sshd.Port)+" "+string(pub))
	w.writeConfig("")
	home := filepath.Join(w.dir, "home")
	os.MkdirAll(home, 0o700)
	w.env = append(cleanEnv(), "HOME="+home, "SSH_AUTH_SOCK=")

	for _, client := range []struct {
		name string
		run  func(...string) result
	}{
		{"ssh", func(a ...string) result { return w.ssh(nil, a...) }},
		{"rssh", func(a ...string) result { return w.rssh(nil, a...) }},
	} {
		before := len(w.sshd.Log())
		r := client.run("-oHostKeyAlgorithms=ssh-rsa", "target", "echo", "ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Errorf("%s -oHostKeyAlgorithms=ssh-rsa: %s", client.name, r)
			continue
		}
		if log := w.sshd.Log()[before:]; !strings.Contains(log, "kex: host key algorithm: ssh-rsa") {
			t.Errorf("%s: the server did not use its ssh-rsa host key", client.name)
		}
	}
	// Without naming it, neither client accepts SHA-1 RSA signatures.
	for _, r := range []result{w.ssh(nil, "target", "true"), w.rssh(nil, "target", "true")} {
		if r.code != 255 || !strings.Contains(r.stderr, "no matching host key type") && !strings.Contains(r.stderr, "no common algorithm for host key") {
			t.Errorf("default HostKeyAlgorithms against an ssh-rsa-only server: %s", r)
		}
	}
}

// localcommand, host-expand, percent: LocalCommand runs here after
// connecting, only with PermitLocalCommand yes, through the shell, with
// ssh's tokens expanded; rssh prints what ssh prints, and refuses an
// unknown token with exit 255 as ssh does.
func TestLocalCommand(t *testing.T) {
	w := newWorld(t, "", "PermitLocalCommand yes\nLocalCommand printf '%%s\\n' %n %h %p %r %T %% \"$RSSH_LC_TEST\"")
	w.env = append(w.env, "RSSH_LC_TEST=from-env")
	want := strings.Join([]string{"target", "127.0.0.1", strconv.Itoa(w.sshd.Port), w.user, "NONE", "%", "from-env"}, "\n") + "\n"
	for _, r := range []result{w.ssh(nil, "target", "true"), w.rssh(nil, "target", "true")} {
		if r.code != 0 || r.stdout != want {
			t.Errorf("LocalCommand: want %q, got %s", want, r)
		}
	}
	// Not permitted: not run.
	for _, r := range []result{w.ssh(nil, "-oPermitLocalCommand=no", "target", "true"), w.rssh(nil, "-oPermitLocalCommand=no", "target", "true")} {
		if r.code != 0 || r.stdout != "" {
			t.Errorf("PermitLocalCommand=no: %s", r)
		}
	}
	// The command's exit status is not the session's.
	for _, r := range []result{w.ssh(nil, "-oLocalCommand=exit 3", "target", "exit 5"), w.rssh(nil, "-oLocalCommand=exit 3", "target", "exit 5")} {
		if r.code != 5 {
			t.Errorf("LocalCommand exit 3, remote exit 5: %s", r)
		}
	}
	// An unknown token fails the connection, in ssh after it is made.
	for _, r := range []result{w.ssh(nil, "-oLocalCommand=echo %z", "target", "true"), w.rssh(nil, "-oLocalCommand=echo %z", "target", "true")} {
		if r.code != 255 || r.stdout != "" {
			t.Errorf("LocalCommand with %%z: %s", r)
		}
	}
}

// rekey: RekeyLimit makes rssh rekey after that much data, as ssh does; the
// server's log counts the key exchanges, and -v logs each NEWKEYS as ssh.
func TestRekeyLimit(t *testing.T) {
	w := newWorld(t, "", "")
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, client := range []string{"ssh", "rssh"} {
		logFile := filepath.Join(w.dir, client+".log")
		before := len(w.sshd.Log())
		args := []string{"-v", "-E", logFile, "-oRekeyLimit=64k", "target", "cat > /dev/null"}
		var r result
		if client == "ssh" {
			r = w.ssh(bytes.NewReader(data), args...)
		} else {
			r = w.rssh(bytes.NewReader(data), args...)
		}
		if r.code != 0 {
			t.Errorf("%s -oRekeyLimit=64k: %s", client, r)
			continue
		}
		kex := strings.Count(w.sshd.Log()[before:], "SSH2_MSG_NEWKEYS received")
		log, _ := os.ReadFile(logFile)
		sent := strings.Count(string(log), "SSH2_MSG_NEWKEYS sent")
		// 300 KiB up with a 64 KiB limit: at least one rekey after the
		// first key exchange, as the regress test asks. (ssh rekeys every
		// 64 KiB; x/crypto queues what is written during a key exchange
		// and does not count it, so it may rekey less often.)
		if kex < 2 || sent != kex {
			t.Errorf("%s: the server saw %d key exchanges, the client logged %d NEWKEYS sent; want 2 or more, equal", client, kex, sent)
		}
	}
}
