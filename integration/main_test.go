// Package integration holds rssh's end-to-end tests: the real rssh binary
// against a real OpenSSH sshd, ssh-agent and ssh client that the tests start
// on 127.0.0.1 from their own temp dirs. Under CI=true a missing program
// fails the test with the package to install; it never skips there.
package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// rsshBin is the rssh binary built once for the whole package.
var rsshBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rssh-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if rsshBin, err = testenv.BuildRSSH(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is one test's server, keys and client-side files.
type world struct {
	t          *testing.T
	dir        string
	sshd       *testenv.SSHD
	user       string
	key        *testenv.Key
	knownHosts string
	config     string // ssh_config path passed with -F
	env        []string
}

// newWorld starts an sshd, authorizes a fresh key for user (the current user
// when empty), trusts the server's host key and writes an ssh_config whose
// Host "target" points at the server. extra is appended to that Host block.
func newWorld(t *testing.T, user string, extra string) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{})
	if user == "" {
		// Not root: root's login scripts on CI-like images take a second or
		// more per command under load, which makes tests slow and flaky.
		user = testenv.LoginUser(t)
	}
	w.user = user
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.sshd.Authorize(t, user, w.key)
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n")
	w.writeConfig(extra)
	home := filepath.Join(w.dir, "home")
	os.MkdirAll(home, 0o700)
	w.env = append(cleanEnv(), "HOME="+home, "SSH_AUTH_SOCK=")
	return w
}

// hostBlock is the ssh_config block for a test server under alias; extra
// is more lines, each already indented.
func hostBlock(alias string, s *testenv.SSHD, user, key, knownHosts, extra string) string {
	return s.HostBlock(alias, user, key, knownHosts, strings.Split(extra, "\n")...) + "\n"
}

func (w *world) writeConfig(extra string) {
	w.config = w.writeFile("ssh_config", hostBlock("target", w.sshd, w.user, w.key.Path, w.knownHosts, extra))
}

// carry sends size random bytes up to the server's sha256sum and, with
// down, brings them back with cat, failing the test unless both ends agree
// on every byte. via runs the client with that stdin and those arguments.
func (w *world) carry(what string, size int, down bool, via func(stdin []byte, args ...string) result) {
	t := w.t
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	up := via(data, "target", "sha256sum")
	if up.code != 0 || !strings.HasPrefix(up.stdout, want) {
		t.Fatalf("%s up: want %s, got %s", what, want, up)
	}
	if !down {
		return
	}
	file := filepath.Join(w.remoteDir(), "blob")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := via(nil, "target", "cat", file)
	got := sha256.Sum256([]byte(r.stdout))
	if r.code != 0 || len(r.stdout) != size || hex.EncodeToString(got[:]) != want {
		t.Fatalf("%s down: got %d bytes, exit %d, stderr %q", what, len(r.stdout), r.code, r.stderr)
	}
}

// remoteDir is a directory the login user can read and write, for files a
// remote command reads or creates.
func (w *world) remoteDir() string {
	w.t.Helper()
	d := filepath.Join(w.sshd.Dir, "shared")
	if err := os.MkdirAll(d, 0o777); err != nil {
		w.t.Fatal(err)
	}
	os.Chmod(d, 0o1777)
	return d
}

func (w *world) writeFile(name, content string) string {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// cleanEnv is the test process's environment without anything that would
// make rssh or ssh reach the developer's own agent or config.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "SSH_AUTH_SOCK", "HOME", "SSH_AGENT_PID", "OP_SERVICE_ACCOUNT_TOKEN":
			continue
		}
		out = append(out, kv)
	}
	return out
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs a program with the world's environment and stdin.
func (w *world) run(stdin io.Reader, program string, args ...string) result {
	w.t.Helper()
	cmd := exec.Command(program, args...)
	cmd.Env = w.env
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			w.t.Fatalf("running %s: %v", program, err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// rssh runs rssh -F <world config> args…
func (w *world) rssh(stdin io.Reader, args ...string) result {
	w.t.Helper()
	return w.run(stdin, rsshBin, append([]string{"-F", w.config}, args...)...)
}

// ssh runs OpenSSH's ssh with the same config, for side-by-side checks.
func (w *world) ssh(stdin io.Reader, args ...string) result {
	w.t.Helper()
	bin := testenv.Need(w.t, "ssh", "openssh-client")
	return w.run(stdin, bin, append([]string{"-F", w.config}, args...)...)
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

func testenvCmd(program string, args ...string) ([]byte, error) {
	return exec.Command(program, args...).CombinedOutput()
}

func (w *world) sshBin() string {
	return testenv.Need(w.t, "ssh", "openssh-client")
}
