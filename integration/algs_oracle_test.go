package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// sshdSince is what the server logged after mark (a length of its log).
func (w *world) sshdSince(mark int) string {
	log := w.sshd.Log()
	if mark > len(log) {
		return ""
	}
	return log[mark:]
}

// lastMatch is the first group of re's last match in s, or "".
func lastMatch(re *regexp.Regexp, s string) string {
	m := re.FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// side runs args through ssh and then rssh with the same config and
// returns each result and what the server logged for it.
func (w *world) side(args ...string) (ssh, rssh result, sshLog, rsshLog string) {
	w.t.Helper()
	mark := len(w.sshd.Log())
	ssh = w.run(nil, w.sshBin(), args...)
	sshLog = w.sshdSince(mark)
	mark = len(w.sshd.Log())
	rssh = w.run(nil, rsshBin, args...)
	rsshLog = w.sshdSince(mark)
	return
}

var hostKeyAlgRE = regexp.MustCompile(`kex: host key algorithm: (\S+)`)

// HostKeyAlgorithms is offered as given, and reordered by known_hosts only
// when OpenSSH reorders it (unset, or changed with + or -): a server with
// Ed25519 and ECDSA host keys, known only by its ECDSA key, is reached or
// refused as ssh reaches or refuses it, with the same host key algorithm.
func TestHostKeyAlgorithmsMatchSSH(t *testing.T) {
	w := newWorld(t, "", "")
	ecdsa := filepath.Join(t.TempDir(), "ssh_host_ecdsa_key")
	if out, err := testenvCmd("ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsa); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Extra: "HostKey " + ecdsa})
	w.sshd.Authorize(t, w.user, w.key)
	pub, _ := os.ReadFile(ecdsa + ".pub")
	f := strings.Fields(string(pub))
	w.writeFile("known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s %s\n", w.sshd.Port, f[0], f[1]))
	w.writeConfig("")
	for _, c := range []struct {
		value string // "" for unset
		ran   bool
	}{
		{"", true},
		{"+ssh-rsa", true},
		// The first algorithm left, ecdsa-sha2-nistp256-cert, is of a known
		// key type, so OpenSSH keeps the list verbatim: Ed25519 wins.
		{"-ssh-ed25519-cert-v01@openssh.com", false},
		{"-ssh-ed25519", true},
		{"ssh-ed25519,ecdsa-sha2-nistp256", false}, // the user's order: Ed25519, unknown
		{"^ssh-ed25519", false},                    // 9.2 does not reorder after ^
		{"ecdsa-sha2-nistp256,ssh-ed25519", true},
		{"ecdsa-sha2-nistp384", false}, // no such host key
	} {
		t.Run("HostKeyAlgorithms="+c.value, func(t *testing.T) {
			args := []string{"-F", w.config}
			if c.value != "" {
				args = append(args, "-o", "HostKeyAlgorithms="+c.value)
			}
			args = append(args, "target", "echo ok")
			want, got, wantLog, gotLog := w.side(args...)
			if (want.code == 0) != c.ran {
				t.Fatalf("the oracle changed: ssh %s", want)
			}
			if got.code != want.code || got.stdout != want.stdout {
				t.Fatalf("rssh %s\nssh  %s", got, want)
			}
			if a, b := lastMatch(hostKeyAlgRE, gotLog), lastMatch(hostKeyAlgRE, wantLog); c.ran && a != b {
				t.Errorf("host key algorithm: rssh %q, ssh %q", a, b)
			}
		})
	}
}

var (
	acceptedRE = regexp.MustCompile(`Accepted publickey for \S+ from \S+ port \d+ ssh2: (\S+)`)
	pkalgRE    = regexp.MustCompile(`attempting public key (\S+)`)
)

// PubkeyAcceptedAlgorithms decides which identities are offered and which
// RSA signature algorithm signs, as in ssh: the same key is accepted with
// the same algorithm, or both are refused.
func TestPubkeyAcceptedAlgorithmsMatchSSH(t *testing.T) {
	w := newWorld(t, "", "")
	rsa := filepath.Join(w.dir, "id_rsa")
	if out, err := testenvCmd("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	rsaPub, _ := os.ReadFile(rsa + ".pub")
	ak, err := os.OpenFile(filepath.Join(w.sshd.Dir, "authorized_keys", w.user), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ak.Write(rsaPub)
	ak.Close()
	both := w.writeFile("ssh_config_both", hostBlock("target", w.sshd, w.user, rsa, w.knownHosts, "IdentityFile "+w.key.Path))
	rsaOnly := w.writeFile("ssh_config_rsa", hostBlock("target", w.sshd, w.user, rsa, w.knownHosts, ""))
	for _, c := range []struct {
		name, config, value string
		ran                 bool
	}{
		{"default", both, "", true},
		{"ed25519 only", both, "ssh-ed25519", true},
		{"rsa-sha2-256", both, "rsa-sha2-256", true},
		{"rsa-sha2-256 then 512", both, "rsa-sha2-256,rsa-sha2-512", true},
		{"rsa key, ed25519 only", rsaOnly, "ssh-ed25519", false},
		{"rsa key, -rsa-sha2-512", rsaOnly, "-rsa-sha2-512", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"-F", c.config}
			if c.value != "" {
				args = append(args, "-o", "PubkeyAcceptedAlgorithms="+c.value)
			}
			args = append(args, "target", "echo ok")
			want, got, wantLog, gotLog := w.side(args...)
			if (want.code == 0) != c.ran {
				t.Fatalf("the oracle changed: ssh %s", want)
			}
			if got.code != want.code || got.stdout != want.stdout {
				t.Fatalf("rssh %s\nssh  %s", got, want)
			}
			if a, b := lastMatch(acceptedRE, gotLog), lastMatch(acceptedRE, wantLog); a != b {
				t.Errorf("accepted key type: rssh %q, ssh %q", a, b)
			}
			if a, b := lastMatch(pkalgRE, gotLog), lastMatch(pkalgRE, wantLog); a != b {
				t.Errorf("signature algorithm: rssh %q, ssh %q", a, b)
			}
		})
	}
}

// KnownHostsCommand is run as ssh runs it — the same invocations with the
// same expanded arguments, its output trusted as known_hosts lines — and
// fails as ssh fails: a command that exits non-zero ends the connection,
// one that cannot be run is passed over.
func TestKnownHostsCommandMatchSSH(t *testing.T) {
	w := newWorld(t, "", "")
	w.writeFile("known_hosts", "") // only the command knows the host
	lines := w.writeFile("kh_lines", w.sshd.KnownHostsLine()+"\n")
	argsLog := filepath.Join(w.dir, "args.log")
	script := func(name, body string) string {
		p := w.writeFile(name, "#!/bin/sh\necho \"$@\" >> "+argsLog+"\n"+body+"\n")
		os.Chmod(p, 0o755)
		return p
	}
	good := script("good", "cat "+lines)
	fails := script("fails", "cat "+lines+"; exit 3")
	empty := script("empty", "true")
	for _, c := range []struct {
		name, command string
		ran           bool
		stderr        string // in both
	}{
		{"tokens", good + " %I %H %t %f %h %p %r %n %k %%", true, ""},
		{"key text", good + " %K", true, ""},
		{"quoted argument", good + ` "two words" 'x y'`, true, ""},
		{"non-zero exit", fails + " %I", false, "KnownHostsCommand failed"},
		{"prints nothing", empty, false, ""},
		{"not an absolute path", "good %I", false, "KnownHostsCommand-ORDER path is not absolute"},
		{"not there", filepath.Join(w.dir, "absent") + " %I", false, `Could not stat KnownHostsCommand-HOSTNAME "` + filepath.Join(w.dir, "absent") + `": No such file or directory`},
		{"none", "none", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"-F", w.config, "-o", "KnownHostsCommand=" + c.command, "target", "echo ok"}
			os.Remove(argsLog)
			want := w.run(nil, w.sshBin(), args...)
			wantArgs, _ := os.ReadFile(argsLog)
			os.Remove(argsLog)
			got := w.run(nil, rsshBin, args...)
			gotArgs, _ := os.ReadFile(argsLog)
			if (want.code == 0) != c.ran || !strings.Contains(want.stderr, c.stderr) {
				t.Fatalf("the oracle changed: ssh %s", want)
			}
			if got.code != want.code || got.stdout != want.stdout {
				t.Fatalf("rssh %s\nssh  %s", got, want)
			}
			if !strings.Contains(got.stderr, c.stderr) {
				t.Errorf("rssh's stderr should say %q: %q", c.stderr, got.stderr)
			}
			if string(gotArgs) != string(wantArgs) {
				t.Errorf("command invocations differ:\nrssh:\n%s\nssh:\n%s", gotArgs, wantArgs)
			}
		})
	}
}
