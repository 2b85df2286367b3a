package hostkeys

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

// Real OpenSSH tools are the oracle here: ssh-keygen makes the keys,
// certificates and hashed files, and ssh-keygen -F says which lines name a
// host.

func needKeygen(t *testing.T) string {
	t.Helper()
	return testenv.Need(t, "ssh-keygen", "openssh-client")
}

func keygen(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(needKeygen(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		// -F exits 1 when nothing is found; callers that expect that say so.
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && len(args) > 0 && args[0] == "-F" {
			return out.String()
		}
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// genKey makes a key pair with ssh-keygen and returns the public key file's
// path and the parsed key.
func genKey(t *testing.T, dir, name, typ string, extra ...string) (string, ssh.PublicKey) {
	t.Helper()
	path := filepath.Join(dir, name)
	keygen(t, append([]string{"-q", "-t", typ, "-N", "", "-C", name, "-f", path}, extra...)...)
	return path + ".pub", testenv.ReadPub(t, path+".pub")
}

// signHost makes a host certificate for pub with ssh-keygen -s ca -h and
// returns it parsed.
func signHost(t *testing.T, caPriv, pub string, args ...string) *ssh.Certificate {
	t.Helper()
	keygen(t, append([]string{"-q", "-s", caPriv, "-h", "-I", "test-host"}, append(args, pub)...)...)
	cert, ok := testenv.ReadPub(t, strings.TrimSuffix(pub, ".pub")+"-cert.pub").(*ssh.Certificate)
	if !ok {
		t.Fatal("ssh-keygen -s did not make a certificate")
	}
	return cert
}

// authorized is "type base64" of k, for building known_hosts lines.
func authorized(k ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n")
}

// keygenFind returns the line numbers ssh-keygen -F name -l -f file reports:
// the lines that name the host and whose key parses.
func keygenFind(t *testing.T, file, name string) []int {
	t.Helper()
	var lines []int
	sc := bufio.NewScanner(strings.NewReader(keygen(t, "-F", name, "-l", "-f", file)))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "# Host "+name+" found: line ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("ssh-keygen -F output %q", sc.Text())
		}
		lines = append(lines, n)
	}
	return lines
}

func writeFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
