package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// OpenSSH certificates, user and host, side by side with OpenSSH's ssh: a CA
// made with ssh-keygen in the test's dir, an sshd that trusts it, and both
// clients given the same config must reach the same outcome.

// sshKeygen runs the real ssh-keygen and fails the test on error.
func sshKeygen(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.Need(t, "ssh-keygen", "openssh-client")
	out, err := testenvCmd(bin, args...)
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// signCert signs pub (a .pub path) with ca and returns the certificate's
// path (ssh-keygen writes PUB minus .pub plus -cert.pub). host makes a host
// certificate; principals and validity are ssh-keygen's -n and -V.
func signCert(t *testing.T, ca *testenv.Key, pub string, host bool, principals, validity string) string {
	t.Helper()
	args := []string{"-q", "-s", ca.Path, "-I", "rssh-test", "-z", "42"}
	if host {
		args = append(args, "-h")
	}
	if principals != "" {
		args = append(args, "-n", principals)
	}
	if validity != "" {
		args = append(args, "-V", validity)
	}
	sshKeygen(t, append(args, pub)...)
	return strings.TrimSuffix(pub, ".pub") + "-cert.pub"
}

// newCertWorld is newWorld with a server that trusts userCA for user
// certificates and has no authorized_keys for the login user, so only a
// certificate can log in.
func newCertWorld(t *testing.T, userCA *testenv.Key) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	caPub := userCA.Path + ".pub"
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Extra: "TrustedUserCAKeys " + caPub})
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	w.writeConfig("")
	home := filepath.Join(w.dir, "home")
	os.MkdirAll(home, 0o700)
	w.env = append(cleanEnv(), "HOME="+home, "SSH_AUTH_SOCK=")
	return w
}

// sameOutcome runs ssh and rssh with the same arguments and fails unless
// both exit with want (and, for 0, print the same output).
func (w *world) sameOutcome(what string, want int, args ...string) (sshR, rsshR result) {
	w.t.Helper()
	sshR = w.ssh(nil, args...)
	rsshR = w.rssh(nil, args...)
	if sshR.code != want || rsshR.code != want || (want == 0 && sshR.stdout != rsshR.stdout) {
		w.t.Errorf("%s: want exit %d from both\nssh: %s\nrssh: %s", what, want, sshR, rsshR)
	}
	return sshR, rsshR
}

// A user certificate next to the IdentityFile (as ssh loads it implicitly),
// or named by CertificateFile, logs in where the bare key cannot.
func TestUserCertificateLogin(t *testing.T) {
	ca := testenv.NewKey(t, t.TempDir(), "user_ca")
	w := newCertWorld(t, ca)
	// Without a certificate neither client gets in.
	w.sameOutcome("no certificate", 255, "target", "echo", "in")

	cert := signCert(t, ca, w.key.Path+".pub", false, w.user, "-5m:+1h")
	w.sameOutcome("implicit -cert.pub", 0, "target", "echo", "in")

	// CertificateFile elsewhere.
	moved := filepath.Join(w.dir, "elsewhere-cert.pub")
	if err := os.Rename(cert, moved); err != nil {
		t.Fatal(err)
	}
	w.sameOutcome("no certificate after moving it", 255, "target", "echo", "in")
	w.writeConfig("CertificateFile " + moved)
	w.sameOutcome("CertificateFile", 0, "target", "echo", "in")
	if !strings.Contains(w.sshd.Log(), "ED25519-CERT") {
		t.Errorf("sshd did not log a certificate login:\n%s", w.sshd.Log())
	}
}

// An expired certificate, or one for another principal, fails in both.
func TestUserCertificateRefused(t *testing.T) {
	ca := testenv.NewKey(t, t.TempDir(), "user_ca")
	w := newCertWorld(t, ca)
	signCert(t, ca, w.key.Path+".pub", false, w.user, "20200101:20200102")
	w.sameOutcome("expired", 255, "target", "true")
	signCert(t, ca, w.key.Path+".pub", false, "somebody-else", "-5m:+1h")
	w.sameOutcome("other principal", 255, "target", "true")
	// A certificate from a CA the server does not trust.
	other := testenv.NewKey(t, t.TempDir(), "other_ca")
	signCert(t, other, w.key.Path+".pub", false, w.user, "-5m:+1h")
	w.sameOutcome("untrusted CA", 255, "target", "true")
}

// Certificates the agent holds (ssh-add loads KEY-cert.pub with KEY) are
// offered as ssh offers them.
func TestUserCertificateFromAgent(t *testing.T) {
	ca := testenv.NewKey(t, t.TempDir(), "user_ca")
	w := newCertWorld(t, ca)
	signCert(t, ca, w.key.Path+".pub", false, w.user, "-5m:+1h")
	agent := testenv.StartAgent(t)
	agent.Add(t, w.key)
	if err := os.Rename(w.key.Path, w.key.Path+".gone"); err != nil {
		t.Fatal(err)
	}
	os.Remove(w.key.Path + "-cert.pub")
	w.writeFile("ssh_config", "Host target\n\tHostName 127.0.0.1\n\tPort "+testenv.Itoa(w.sshd.Port)+
		"\n\tUser "+w.user+"\n\tIdentityFile none\n\tUserKnownHostsFile "+w.knownHosts+
		"\n\tGlobalKnownHostsFile /dev/null\n\tStrictHostKeyChecking yes\n\tBatchMode yes\n")
	w.env = append(w.env, "SSH_AUTH_SOCK="+agent.Sock)
	w.sameOutcome("agent certificate", 0, "target", "echo", "in")
}

// hostCertWorld starts an sshd whose host key is certified by ca with the
// given principals and validity, and a known_hosts holding only the CA.
func hostCertWorld(t *testing.T, ca *testenv.Key, principals, validity string, knownCA *testenv.Key) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Setup: func(dir string, hk *testenv.Key) string {
		return "HostCertificate " + signCert(t, ca, hk.Path+".pub", true, principals, validity)
	}})
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.sshd.Authorize(t, w.user, w.key)
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.writeFile("known_hosts", "@cert-authority * "+knownCA.AuthorizedLine()+"\n")
	w.writeConfig("")
	home := filepath.Join(w.dir, "home")
	os.MkdirAll(home, 0o700)
	w.env = append(cleanEnv(), "HOME="+home, "SSH_AUTH_SOCK=")
	return w
}

// A host certificate from a @cert-authority in known_hosts is trusted with
// StrictHostKeyChecking yes, as ssh trusts it; HostKeyAlias names the
// principal when set.
func TestHostCertificateTrusted(t *testing.T) {
	ca := testenv.NewKey(t, t.TempDir(), "host_ca")
	w := hostCertWorld(t, ca, "127.0.0.1,alias.example", "-5m:+1h", ca)
	w.sameOutcome("CA in known_hosts", 0, "target", "echo", "in")
	w.sameOutcome("HostKeyAlias principal", 0, "-o", "HostKeyAlias=alias.example", "target", "echo", "in")
	w.sameOutcome("HostKeyAlias not a principal", 255, "-o", "HostKeyAlias=nope.example", "target", "echo", "in")
	// A certificate with no principals is valid for any name, in OpenSSH.
	w2 := hostCertWorld(t, ca, "", "-5m:+1h", ca)
	w2.sameOutcome("no principals", 0, "target", "echo", "in")
}

// A wrong principal, an expired or not yet valid certificate and another CA
// are refused as ssh refuses them, and nothing is authenticated.
func TestHostCertificateRefused(t *testing.T) {
	ca := testenv.NewKey(t, t.TempDir(), "host_ca")
	other := testenv.NewKey(t, t.TempDir(), "other_ca")
	for _, tc := range []struct {
		name, principals, validity string
		known                      *testenv.Key
		wantSSH, wantRSSH          string
	}{
		{"wrong principal", "host.example", "-5m:+1h", ca, "name is not a listed principal", "not a listed principal"},
		{"expired", "127.0.0.1", "20200101:20200102", ca, "expired", "expired"},
		{"not yet valid", "127.0.0.1", "+1d:+2d", ca, "not yet valid", "not yet valid"},
		{"other CA", "127.0.0.1", "-5m:+1h", other, "Host key verification failed", "host key verification failed"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			w := hostCertWorld(t, ca, tc.principals, tc.validity, tc.known)
			s, r := w.sameOutcome(tc.name, 255, "target", "echo", "in")
			if !strings.Contains(s.stderr, tc.wantSSH) || !strings.Contains(r.stderr, tc.wantRSSH) {
				t.Errorf("%s: messages\nssh: %s\nrssh: %s", tc.name, s.stderr, r.stderr)
			}
			if strings.Contains(w.sshd.Log(), "Accepted publickey") {
				t.Errorf("%s: authentication reached the server", tc.name)
			}
		})
	}
}

// RevokedHostKeys, as a key list or a KRL made by ssh-keygen -k, refuses
// a revoked host key whatever known_hosts says, as ssh refuses it; a file
// that cannot be read refuses the host in both.
func TestRevokedHostKeys(t *testing.T) {
	w := newWorld(t, "", "")
	other := testenv.NewKey(t, w.dir, "unrelated")
	list := w.writeFile("revoked_list", "# revoked\n"+w.sshd.HostKey.AuthorizedLine()+"\n")
	krl := filepath.Join(w.dir, "krl")
	sshKeygen(t, "-k", "-f", krl, w.sshd.HostKey.Path+".pub")
	krlOther := filepath.Join(w.dir, "krl_other")
	sshKeygen(t, "-k", "-f", krlOther, other.Path+".pub")
	sha := w.writeFile("spec", "sha256: "+w.sshd.HostKey.AuthorizedLine()+"\n")
	krlSHA := filepath.Join(w.dir, "krl_sha")
	sshKeygen(t, "-k", "-f", krlSHA, sha)

	for _, tc := range []struct {
		name, file string
		want       int
	}{
		{"key list", list, 255},
		{"KRL by key", krl, 255},
		{"KRL by SHA256", krlSHA, 255},
		{"KRL of another key", krlOther, 0},
		{"missing file", filepath.Join(w.dir, "missing"), 255},
	} {
		s, r := w.sameOutcome(tc.name, tc.want, "-o", "RevokedHostKeys="+tc.file, "target", "echo", "in")
		if tc.want == 255 && tc.file != filepath.Join(w.dir, "missing") &&
			(!strings.Contains(s.stderr, "revoked by file") || !strings.Contains(r.stderr, "revoked by file")) {
			t.Errorf("%s: messages\nssh: %s\nrssh: %s", tc.name, s.stderr, r.stderr)
		}
	}
	if strings.Count(w.sshd.Log(), "Accepted publickey") != 2 {
		t.Errorf("authentication reached the server for a revoked key (or not for the control):\n%s", w.sshd.Log())
	}
}

// A host certificate is refused when its serial, or its CA, is revoked.
func TestRevokedHostCertificate(t *testing.T) {
	ca := testenv.NewKey(t, t.TempDir(), "host_ca")
	w := hostCertWorld(t, ca, "127.0.0.1", "-5m:+1h", ca)
	w.sameOutcome("control", 0, "target", "echo", "in")
	bySerial := filepath.Join(w.dir, "krl_serial")
	sshKeygen(t, "-k", "-f", bySerial, "-s", ca.Path+".pub", w.writeFile("spec", "serial: 40-50\n"))
	w.sameOutcome("serial revoked", 255, "-o", "RevokedHostKeys="+bySerial, "target", "true")
	byCA := filepath.Join(w.dir, "krl_ca")
	sshKeygen(t, "-k", "-f", byCA, ca.Path+".pub")
	w.sameOutcome("CA revoked", 255, "-o", "RevokedHostKeys="+byCA, "target", "true")
	caList := w.writeFile("ca_list", ca.AuthorizedLine()+"\n")
	w.sameOutcome("CA in key list", 255, "-o", "RevokedHostKeys="+caList, "target", "true")
	otherSerial := filepath.Join(w.dir, "krl_other_serial")
	sshKeygen(t, "-k", "-f", otherSerial, "-s", ca.Path+".pub", w.writeFile("spec2", "serial: 43\n"))
	w.sameOutcome("other serial", 0, "-o", "RevokedHostKeys="+otherSerial, "target", "echo", "in")
}

// sshAdd runs the real ssh-add against agent with args.
func sshAdd(t *testing.T, agent *testenv.Agent, args ...string) {
	t.Helper()
	bin := testenv.Need(t, "ssh-add", "openssh-client")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+agent.Sock)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// agentWorld is a world whose key lives only in a fresh agent, added with
// ssh-add and constraints (-h …), and whose config's IdentityFile is the
// private key's path, the file moved away and its .pub left.
func agentWorld(t *testing.T, constraints ...string) (*world, *testenv.Agent) {
	t.Helper()
	w := newWorld(t, "", "")
	agent := testenv.StartAgent(t)
	hosts := w.writeFile("agent_known_hosts", "127.0.0.1 "+w.sshd.HostKey.AuthorizedLine()+"\n"+
		"other.example "+testenv.NewKey(t, w.dir, "other_host").AuthorizedLine()+"\n")
	sshAdd(t, agent, append(append([]string{"-q", "-H", hosts}, constraints...), w.key.Path)...)
	if err := os.Rename(w.key.Path, w.key.Path+".gone"); err != nil {
		t.Fatal(err)
	}
	// IdentityFile names the private key, now gone: ssh and rssh find the
	// key by its .pub and use the agent's copy (IdentitiesOnly yes).
	w.writeFile("ssh_config", hostBlock("target", w.sshd, w.user, w.key.Path, w.knownHosts, ""))
	w.env = append(w.env, "SSH_AUTH_SOCK="+agent.Sock)
	return w, agent
}

// A key added with ssh-add -h USER@127.0.0.1 signs for rssh as for ssh:
// rssh binds the agent to the server (session-bind@openssh.com) first.
func TestAgentDestinationConstrainedKey(t *testing.T) {
	w, _ := agentWorld(t, "-h", testenv.LoginUser(t)+"@127.0.0.1")
	w.sameOutcome("constrained to this host", 0, "target", "echo", "in")
	if n := strings.Count(w.sshd.Log(), "Accepted publickey"); n != 2 {
		t.Errorf("want 2 logins, sshd logged %d", n)
	}
}

// A key constrained to another host, or to another user here, is refused
// for both clients.
func TestAgentKeyConstrainedElsewhere(t *testing.T) {
	for _, c := range []string{"other.example", "nobody@127.0.0.1"} {
		t.Run(strings.ReplaceAll(c, "@", "_at_"), func(t *testing.T) {
			w, _ := agentWorld(t, "-h", c)
			w.sameOutcome("constrained to "+c, 255, "target", "echo", "in")
			if strings.Contains(w.sshd.Log(), "Accepted publickey") {
				t.Errorf("a login was accepted:\n%s", w.sshd.Log())
			}
		})
	}
}

// Through a forwarded agent (-A), the second hop may use a key only when
// its constraints name that hop ("127.0.0.1>USER@127.0.0.1"): rssh binds
// each forwarded agent connection as a forwarding hop, as ssh does, so a
// key constrained to the first hop alone is refused to the remote ssh.
func TestAgentDestinationConstraintsForwarded(t *testing.T) {
	user := testenv.LoginUser(t)
	for _, tc := range []struct {
		name        string
		constraints []string
		want        string
	}{
		{"hop allowed", []string{"-h", user + "@127.0.0.1", "-h", "127.0.0.1>" + user + "@127.0.0.1"}, "hop\n"},
		{"first hop only", []string{"-h", user + "@127.0.0.1"}, "refused\n"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			w, _ := agentWorld(t, tc.constraints...)
			shared := w.remoteDir()
			kh := filepath.Join(shared, "known_hosts")
			cfg := filepath.Join(shared, "ssh_config")
			os.WriteFile(kh, []byte(w.sshd.KnownHostsLine()+"\n"), 0o644)
			os.WriteFile(cfg, []byte("Host hop2\n\tHostName 127.0.0.1\n\tPort "+testenv.Itoa(w.sshd.Port)+
				"\n\tUser "+user+"\n\tUserKnownHostsFile "+kh+"\n\tGlobalKnownHostsFile /dev/null\n"+
				"\tStrictHostKeyChecking yes\n\tBatchMode yes\n"), 0o644)
			inner := "ssh -F " + cfg + " hop2 echo hop || echo refused"
			s := w.ssh(nil, "-A", "target", inner)
			r := w.rssh(nil, "-A", "target", inner)
			if s.code != 0 || s.stdout != tc.want || r.code != 0 || r.stdout != tc.want {
				t.Errorf("want %q from both\nssh: %s\nrssh: %s", tc.want, s, r)
			}
		})
	}
}

// RSA user keys certified by an RSA CA (signed rsa-sha2-512), and ECDSA
// keys: offered as rsa-sha2-*-cert-v01 / ecdsa-*-cert-v01, as ssh offers them.
func TestUserCertificateOtherKeyTypes(t *testing.T) {
	caDir := t.TempDir()
	ca := filepath.Join(caDir, "rsa_ca")
	sshKeygen(t, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", ca)
	caKey := &testenv.Key{Path: ca}
	w := newCertWorld(t, caKey)
	for _, typ := range []string{"rsa", "ecdsa"} {
		key := filepath.Join(w.dir, "id_"+typ)
		sshKeygen(t, "-q", "-t", typ, "-N", "", "-f", key)
		sshKeygen(t, "-q", "-s", ca, "-t", "rsa-sha2-512", "-I", "rssh-test", "-n", w.user, "-V", "-5m:+1h", key+".pub")
		w.writeFile("ssh_config", hostBlock("target", w.sshd, w.user, key, w.knownHosts, ""))
		w.sameOutcome(typ+" certificate", 0, "target", "echo", "in")
	}
}
