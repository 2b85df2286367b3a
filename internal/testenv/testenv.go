// Package testenv starts the real components rssh is tested against — an
// OpenSSH sshd on 127.0.0.1 and a free port, an OpenSSH ssh-agent on a temp
// socket — from a temp dir the test owns, and stops them when it ends. It never
// touches /etc/ssh, /root/.ssh or the machine's own services.
//
// The integration tests and the benchmark program share it, so it takes a TB
// rather than *testing.T.
package testenv

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// TB is the part of testing.TB the harness needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// Need makes sure a program is installed. Locally a missing program skips
// the test with what to install; under CI=true it fails instead, so CI never
// goes green on a test that did not run.
func Need(t TB, program, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, program)); err == nil {
			return filepath.Join(dir, program)
		}
	}
	msg := fmt.Sprintf("%s not found: install it with apt-get install %s", program, debianPackage)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s", msg)
	}
	t.Skipf("%s", msg)
	return ""
}

// Key is a throwaway key pair written to a temp dir in OpenSSH formats.
type Key struct {
	Path      string // private key file (mode 0600); Path+".pub" holds the public key
	Signer    ssh.Signer
	PublicKey ssh.PublicKey
}

// AuthorizedLine is the key's authorized_keys / .pub line.
func (k *Key) AuthorizedLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey)))
}

// NewKey makes an ed25519 key named name in dir.
func NewKey(t TB, dir, name string) *Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	k := &Key{Path: filepath.Join(dir, name), Signer: signer, PublicKey: signer.PublicKey()}
	if err := os.WriteFile(k.Path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("write key: %v", err)
	}
	if err := os.WriteFile(k.Path+".pub", []byte(k.AuthorizedLine()+" "+name+"\n"), 0o644); err != nil {
		t.Fatalf("write key: %v", err)
	}
	return k
}

// SSHD is a running OpenSSH server owned by one test.
type SSHD struct {
	Dir     string
	Port    int
	Addr    string // 127.0.0.1:PORT
	HostKey *Key
	LogPath string
	cmd     *exec.Cmd
}

// SSHDOptions adjust the server's config.
type SSHDOptions struct {
	// Extra is appended to sshd_config (before any Match block the test adds).
	Extra string
	// NoAcceptEnv leaves out "AcceptEnv OP_SERVICE_ACCOUNT_TOKEN RSSH_ENV".
	NoAcceptEnv bool
	// Setup, when set, runs once the server's dir and host key exist and
	// returns more sshd_config lines (a HostCertificate for that key).
	Setup func(dir string, hostKey *Key) string
	// LogLevel replaces DEBUG2 (sshd takes a keyword's first value, so
	// Extra cannot): at DEBUG2 sshd is slow enough to hide client races.
	LogLevel string
}

// StartSSHD starts sshd -D on 127.0.0.1 and a free port, with its own host key,
// authorized_keys and log in a temp dir, and waits until it answers. Its log
// is shown if the test fails.
func StartSSHD(t TB, opts SSHDOptions) *SSHD {
	t.Helper()
	sshd := Need(t, "sshd", "openssh-server")
	// Debian's sshd refuses to start without its privilege-separation dir.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		t.Fatalf("mkdir /run/sshd: %v", err)
	}
	// sshd reads authorized_keys as the login user, so the dir must be
	// readable by a non-root login, unlike t.TempDir()'s 0700 parents.
	dir, err := os.MkdirTemp("", "rssh-sshd-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &SSHD{Dir: dir, LogPath: filepath.Join(dir, "sshd.log")}
	s.HostKey = NewKey(t, dir, "ssh_host_ed25519_key")
	if err := os.MkdirAll(filepath.Join(dir, "authorized_keys"), 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	if opts.Setup != nil {
		opts.Extra += "\n" + opts.Setup(dir, s.HostKey) + "\n"
	}
	acceptEnv := "AcceptEnv OP_SERVICE_ACCOUNT_TOKEN RSSH_ENV"
	if opts.NoAcceptEnv {
		acceptEnv = ""
	}
	logLevel := "DEBUG2"
	if opts.LogLevel != "" {
		logLevel = opts.LogLevel
	}
	var lastErr error
	// A free port can be taken between probing and sshd's bind; retry a few times.
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		conf := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys/%%u
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
%s
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel %s
Subsystem sftp internal-sftp
%s
`, port, s.HostKey.Path, dir, dir, acceptEnv, logLevel, opts.Extra)
		confPath := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatalf("%v", err)
		}
		if out, err := exec.Command(sshd, "-t", "-f", confPath).CombinedOutput(); err != nil {
			t.Fatalf("sshd -t: %v\n%s", err, out)
		}
		os.Remove(s.LogPath)
		// -E, not -e: with -e a session child's debug lines before exec land
		// on the session's stderr, in the client's output.
		cmd := exec.Command(sshd, "-D", "-E", s.LogPath, "-f", confPath)
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitBanner(addr, exited, 10*time.Second); err != nil {
			lastErr = err
			cmd.Process.Kill()
			<-exited
			continue
		}
		s.Port, s.Addr, s.cmd = port, addr, cmd
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("sshd log (%s):\n%s", s.LogPath, tail(s.Log(), 60))
			}
		})
		return s
	}
	log, _ := os.ReadFile(s.LogPath)
	t.Fatalf("sshd did not start: %v\n%s", lastErr, log)
	return nil
}

// waitBanner waits until addr sends an SSH banner, the process exits, or
// the deadline passes.
func waitBanner(addr string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("sshd exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			_, err = c.Read(buf)
			c.Close()
			if err == nil && string(buf) == "SSH-" {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("sshd exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("no banner on %s after %v", addr, d)
}

func freePort(t TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Log returns sshd's log so far.
func (s *SSHD) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// PID is sshd's listener process.
func (s *SSHD) PID() int { return s.cmd.Process.Pid }

// Authorize lets key log in as user.
func (s *SSHD) Authorize(t TB, user string, keys ...*Key) {
	t.Helper()
	p := filepath.Join(s.Dir, "authorized_keys", user)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer f.Close()
	for _, k := range keys {
		fmt.Fprintln(f, k.AuthorizedLine())
	}
}

// HostBlock is an ssh_config Host block for this server under alias that
// logs in as user with identityFile only, trusts only knownHosts and never
// prompts; each of extra is one more line (a keyword and its arguments).
//
// It starts with a "Match all" block that turns off the post-quantum key
// exchange warning (WarnWeakCrypto, OpenSSH 10.1): this 9.2 sshd offers
// sntrup761x25519, which x/crypto lacks, so every rssh connection to it
// would warn, and tests compare stderr. IgnoreUnknown lets the 9.2 ssh read
// the same file; it covers Rssh* too, as the README has users write it.
// The warning itself is tested in integration/weakcrypto_test.go.
func (s *SSHD) HostBlock(alias, user, identityFile, knownHosts string, extra ...string) string {
	var b strings.Builder
	b.WriteString("Match all\n\tIgnoreUnknown WarnWeakCrypto,Rssh*\n\tWarnWeakCrypto no\n")
	fmt.Fprintf(&b, "Host %s\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n"+
		"\tIdentitiesOnly yes\n\tUserKnownHostsFile %s\n\tGlobalKnownHostsFile /dev/null\n"+
		"\tStrictHostKeyChecking yes\n\tBatchMode yes\n", alias, s.Port, user, identityFile, knownHosts)
	for _, l := range extra {
		if l = strings.TrimSpace(l); l != "" {
			b.WriteString("\t" + l + "\n")
		}
	}
	return b.String()
}

// KnownHostsLine is the known_hosts line for this server under its
// [127.0.0.1]:PORT name.
func (s *SSHD) KnownHostsLine() string {
	return fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, s.HostKey.AuthorizedLine())
}

// Agent is a running OpenSSH ssh-agent on a socket in a temp dir.
type Agent struct {
	Sock string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
}

// StartAgent starts ssh-agent -D on a fresh socket and waits for it.
func StartAgent(t TB) *Agent {
	t.Helper()
	bin := Need(t, "ssh-agent", "openssh-client")
	// Socket paths are limited to ~104 bytes; t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "rssh-agent-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &Agent{Sock: filepath.Join(dir, "agent.sock"), done: make(chan struct{})}
	var log bytes.Buffer
	a.cmd = exec.Command(bin, "-D", "-a", a.Sock)
	a.cmd.Stdout, a.cmd.Stderr = &log, &log
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("starting ssh-agent: %v", err)
	}
	go func() { a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() { a.cmd.Process.Kill(); <-a.done })
	if err := WaitSocket(a.Sock, a.done, 10*time.Second); err != nil {
		t.Fatalf("ssh-agent: %v\n%s", err, log.String())
	}
	return a
}

// Add loads keys into the agent with the real ssh-add.
func (a *Agent) Add(t TB, keys ...*Key) {
	t.Helper()
	for _, k := range keys {
		cmd := exec.Command("ssh-add", k.Path)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+a.Sock)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v\n%s", k.Path, err, out)
		}
	}
}

// WaitSocket waits until a unix socket accepts connections.
func WaitSocket(path string, exited <-chan struct{}, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("socket %s not ready after %v: %w", path, d, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// LoginUser is the account non-root tests log in as. As root it is a
// throwaway user with /bin/sh made on first use (root's login scripts on
// Debian images add ~100 ms to every command); otherwise the current user.
func LoginUser(t TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("%v", err)
		}
		return u.Username
	}
	const name = "rssh-test"
	if _, err := user.Lookup(name); err == nil {
		return name
	}
	Need(t, "useradd", "passwd")
	if out, err := exec.Command("useradd", "-M", "-d", "/", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
		if _, lerr := user.Lookup(name); lerr != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
	}
	// useradd leaves the account locked ("!"), which sshd refuses with UsePAM no.
	if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v\n%s", err, out)
	}
	return name
}

// CurrentUser is the local user name.
func CurrentUser(t TB) string {
	u, err := user.Current()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return u.Username
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Itoa is strconv.Itoa, for building argument lists tersely.
func Itoa(n int) string { return strconv.Itoa(n) }
