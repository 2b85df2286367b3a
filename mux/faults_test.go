//go:build linux

package mux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// TestHelperMasterProcess is not a test: it is the rssh master that
// TestMasterKilledMidSession starts as a child process and kills.
func TestHelperMasterProcess(t *testing.T) {
	sock := os.Getenv("MUX_HELPER_SOCK")
	if sock == "" {
		t.Skip("helper process only")
	}
	keyPEM, _ := os.ReadFile(os.Getenv("MUX_HELPER_KEY"))
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", os.Getenv("MUX_HELPER_ADDR"), &ssh.ClientConfig{
		User: os.Getenv("MUX_HELPER_USER"), Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(&SSHHandler{Client: c}, ServerOptions{})
	go func() { time.Sleep(2 * time.Minute); s.Shutdown() }() // never outlive the test
	s.Serve(l)
}

// TestMasterKilledMidSession: an rssh master killed (SIGKILL) while
// OpenSSH's `ssh -S` runs a session through it: the client exits 255 and
// does not hang, as with an OpenSSH master.
func TestMasterKilledMidSession(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock := filepath.Join(r.dir, "killed.sock")
	master := exec.Command(os.Args[0], "-test.run=^TestHelperMasterProcess$", "-test.count=1")
	master.Env = append(os.Environ(), "MUX_HELPER_SOCK="+sock, "MUX_HELPER_KEY="+r.key.Path,
		"MUX_HELPER_ADDR="+r.sshd.Addr, "MUX_HELPER_USER="+r.user)
	var mlog bytes.Buffer
	master.Stdout, master.Stderr = &mlog, &mlog
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { master.Wait(); close(exited) }()
	t.Cleanup(func() { master.Process.Kill(); <-exited })
	if err := testenv.WaitSocket(sock, exited, 20*time.Second); err != nil {
		t.Fatalf("helper master: %v\n%s", err, mlog.String())
	}
	client := r.ssh("-S", sock, "h", "echo started; sleep 60")
	out := new(testenv.Buffer)
	client.Stdout = out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { client.Wait(); close(done) }()
	if !waitFor(20*time.Second, func() bool { return strings.Contains(out.String(), "started") }) {
		t.Fatalf("session did not start: %q\n%s", out.String(), mlog.String())
	}
	master.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		client.Process.Kill()
		t.Fatal("ssh -S hung after the master was killed")
	}
	if code := client.ProcessState.ExitCode(); code != 255 {
		t.Fatalf("ssh -S exited %d, want 255", code)
	}
}

// TestPeerOtherUID: a client whose euid is neither the master's nor 0
// gets nothing, not even HELLO, from an rssh master, as from an OpenSSH
// master (both sockets opened up to 0666 so that the peer check, not the
// file mode, is what refuses).
func TestPeerOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as uid 65534")
	}
	testenv.Need(t, "setpriv", "util-linux")
	testenv.Need(t, "socat", "socat")
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	os.Chmod(r.dir, 0o711)
	rlog := new(testenv.Buffer)
	rsock, _ := r.master(&SSHHandler{}, ServerOptions{Log: slog.New(slog.NewTextHandler(rlog, nil))})
	osock, _ := r.openSSHMaster()
	for i, sock := range []string{rsock, osock} {
		os.Chmod(sock, 0o666)
		asRoot := new(testenv.Buffer)
		root := exec.Command("socat", "-u", "UNIX-CONNECT:"+sock, "-")
		root.Stdout = asRoot
		root.Start()
		waitFor(5*time.Second, func() bool { return len(asRoot.String()) >= 12 })
		root.Process.Kill()
		root.Wait()
		if len(asRoot.String()) < 12 {
			t.Fatalf("%s: root got %q, want HELLO", sock, asRoot.String())
		}
		other := run(t, exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"socat", "-u", "UNIX-CONNECT:"+sock, "-"), "")
		if other.stdout != "" {
			t.Fatalf("%s: uid 65534 got %q", sock, other.stdout)
		}
		log := []*testenv.Buffer{rlog, r.osshLog}[i]
		if !log.WaitFor("multiplex uid mismatch: peer euid 65534 != uid 0", 5*time.Second) {
			t.Fatalf("%s: no uid mismatch logged: %s", sock, log.String())
		}
	}
}

// TestStaleSocket: a socket file nobody listens on. The client reports
// ErrStale and leaves it (OpenSSH's ssh with ControlMaster no falls back
// to a direct connection and leaves it too); a master refuses to take
// its place until RemoveStale, which removes only this user's sockets.
func TestStaleSocket(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock := filepath.Join(r.dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := Dial(sock, time.Second); !errors.Is(err, ErrStale) {
		t.Fatalf("Dial: %v", err)
	}
	if res := run(t, r.ssh("-S", sock, "-o", "ControlMaster=no", "h", "echo direct"), ""); res.stdout != "direct\n" || res.code != 0 {
		t.Fatalf("ssh with a stale socket: %+v", res)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket removed by a client: %v", err)
	}
	if _, err := Listen(sock); !errors.Is(err, ErrExists) || err.Error() != fmt.Sprintf("ControlSocket %s already exists, disabling multiplexing", sock) {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if os.Geteuid() == 0 {
		os.Chown(sock, 65534, 65534)
		if removed, err := RemoveStale(sock); removed || err == nil {
			t.Fatalf("RemoveStale of another user's socket: %v, %v", removed, err)
		}
		os.Chown(sock, 0, 0)
	}
	if removed, err := RemoveStale(sock); !removed || err != nil {
		t.Fatalf("RemoveStale: %v, %v", removed, err)
	}
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if removed, err := RemoveStale(sock); removed || err != nil {
		t.Fatalf("RemoveStale of a live socket: %v, %v", removed, err)
	}
}

// TestSocketSafety: the socket is 0600; a directory others can write
// (not sticky) or that another user owns is refused; a live socket is
// never replaced, and Close leaves a newer master's socket alone.
func TestSocketSafety(t *testing.T) {
	dir, err := os.MkdirTemp("", "mux-safe-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(sock + ".*"); len(left) != 0 {
		t.Fatalf("temporary names left: %v", left)
	}
	if _, err := Listen(sock); !errors.Is(err, ErrExists) {
		t.Fatalf("second Listen: %v", err)
	}
	// Someone replaced the socket: Close must not remove theirs.
	os.Remove(sock)
	l2, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("Close removed a newer socket: %v", err)
	}
	l2.Close()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("Close left its socket: %v", err)
	}

	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := Listen(filepath.Join(open, "s")); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("world-writable dir: %v", err)
	}
	os.Chmod(open, 0o777|os.ModeSticky)
	if l, err := Listen(filepath.Join(open, "s")); err != nil {
		t.Fatalf("sticky dir: %v", err)
	} else {
		l.Close()
	}
	if os.Geteuid() == 0 {
		theirs := filepath.Join(dir, "theirs")
		os.Mkdir(theirs, 0o755)
		os.Chown(theirs, 65534, 65534)
		if _, err := Listen(filepath.Join(theirs, "s")); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("another user's dir: %v", err)
		}
	}
}

// TestControlPathTooLong: a path that does not fit sun_path is an error
// in OpenSSH's words, from the client and from a master (whose limit is
// shorter by the temporary suffix it listens on first).
func TestControlPathTooLong(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	long := "/tmp/" + strings.Repeat("x", 110)
	res := run(t, r.ssh("-S", long, "-O", "check", "h"), "")
	_, err := Dial(long, time.Second)
	if !errors.Is(err, ErrPathTooLong) || res.code != 255 || res.stderr != err.Error()+"\r\n" {
		t.Fatalf("Dial: %v; ssh: %+v", err, res)
	}
	mid := "/tmp/" + strings.Repeat("y", 95) // fits a client, not a master's temporary name
	if _, err := Listen(mid); !errors.Is(err, ErrPathTooLong) {
		t.Fatalf("Listen: %v", err)
	}
	ossh := run(t, r.ssh("-M", "-S", mid, "-N", "h"), "")
	if ossh.code != 255 || !strings.Contains(ossh.stderr, "too long for Unix domain socket") {
		t.Fatalf("OpenSSH master on the same path: %+v", ossh)
	}
}

// TestControlPersistWaitsForSession: WaitIdle (the ControlPersist timer)
// does not fire while a session is open, and fires once it has been idle
// for the whole timeout after that session ends.
func TestControlPersistWaitsForSession(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	sock, srv := r.master(&SSHHandler{}, ServerOptions{})
	const persist = 300 * time.Millisecond
	inR, inW, _ := os.Pipe()
	sess := r.ssh("-S", sock, "h", "cat >/dev/null")
	sess.Stdin = inR
	if err := sess.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	if !waitFor(10*time.Second, func() bool { return srv.Active() == 1 }) {
		t.Fatal("session not live")
	}
	idle := make(chan time.Time, 1)
	go func() {
		if err := srv.WaitIdle(context.Background(), persist); err == nil {
			idle <- time.Now()
		}
	}()
	select {
	case <-idle:
		t.Fatal("WaitIdle returned with a session open")
	case <-time.After(3 * persist):
	}
	ended := time.Now()
	inW.Close()
	sess.Wait()
	select {
	case at := <-idle:
		if at.Sub(ended) < persist {
			t.Fatalf("expired %v after the session ended, before the %v timeout", at.Sub(ended), persist)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitIdle never returned after the last session ended")
	}
}
