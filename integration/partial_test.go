package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// sshd's AuthenticationMethods publickey,publickey: a login needs two
// different keys. After the first key's partial success rssh goes on with
// its next identities, never offering the accepted one again (ssh offers
// it again and sshd refuses it: "refusing previously-used key"); ssh and
// rssh reach the same outcome in each case. An identity whose PATH.pub is
// a certificate is that certificate, as ssh reads it (OpenSSH's
// multipubkey regress test keeps its certificate that way).
func TestAuthenticationMethodsTwoKeys(t *testing.T) {
	ca := testenv.NewKey(t, t.TempDir(), "user_ca")
	w := &world{t: t, dir: t.TempDir()}
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{
		Extra: "AuthenticationMethods publickey,publickey\nTrustedUserCAKeys " + ca.Path + ".pub",
	})
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_1")
	key2 := testenv.NewKey(t, w.dir, "id_2")
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	w.writeConfig("IdentityFile " + key2.Path)
	home := filepath.Join(w.dir, "home")
	os.MkdirAll(home, 0o700)
	w.env = append(cleanEnv(), "HOME="+home, "SSH_AUTH_SOCK=")

	w.sshd.Authorize(t, w.user, w.key)
	w.sameOutcome("one authorized key", 255, "target", "true")

	w.sshd.Authorize(t, w.user, key2)
	mark := len(w.sshd.Log())
	w.rssh(nil, "target", "true")
	if log := w.sshdSince(mark); strings.Contains(log, "previously-used") {
		t.Errorf("rssh offered the accepted key again:\n%s", log)
	}
	w.sameOutcome("two authorized keys", 0, "target", "echo", "in")

	// A certificate kept as the identity's .pub, and a plain key: the
	// certificate is offered, not the bare key under it.
	certKey := testenv.NewKey(t, w.dir, "cert_key")
	cert := signCert(t, ca, certKey.Path+".pub", false, w.user, "-5m:+1h")
	if err := os.Rename(cert, certKey.Path+".pub"); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(w.sshd.Dir, "authorized_keys", w.user))
	w.sshd.Authorize(t, w.user, key2)
	// IdentityFile order: cert_key (the certificate), then id_2.
	w.config = w.writeFile("ssh_config", hostBlock("target", w.sshd, w.user, certKey.Path, w.knownHosts, "IdentityFile "+key2.Path))
	w.sameOutcome("certificate in PATH.pub and another key", 0, "target", "echo", "in")
	// The certificate and the bare key it certifies are one key to sshd.
	os.Remove(filepath.Join(w.sshd.Dir, "authorized_keys", w.user))
	w.sshd.Authorize(t, w.user, certKey)
	w.sameOutcome("certificate and its own key", 255, "target", "true")
}
