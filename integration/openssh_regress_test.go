package integration

import (
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
