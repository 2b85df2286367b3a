//go:build linux

package envmap

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// need finds a program the test cannot do without. Locally a missing one
// skips the test; under CI=true it fails, so CI never passes a test that did
// not run.
func need(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: install dbus gnome-keyring (apt-get install -y dbus gnome-keyring)", program)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// sandbox is a test's private HOME, TMPDIR and XDG dirs, all under one root
// that the hygiene scan covers. It sets them in the test's environment (so
// the test must not be parallel) and clears DBUS_SESSION_BUS_ADDRESS.
type sandbox struct {
	Root, Home, Tmp, Run, Data, Locks string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	// Short, because the bus socket lives in Run and unix socket paths are
	// limited to ~108 bytes.
	root, err := os.MkdirTemp("", "rssh-envmap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	s := &sandbox{Root: root, Home: filepath.Join(root, "home"), Tmp: filepath.Join(root, "tmp"),
		Run: filepath.Join(root, "run"), Locks: filepath.Join(root, "run", "rssh")}
	s.Data = filepath.Join(s.Home, ".local", "share")
	for _, d := range []string{s.Home, s.Tmp, s.Run, s.Data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", s.Home)
	t.Setenv("TMPDIR", s.Tmp)
	t.Setenv("XDG_RUNTIME_DIR", s.Run)
	t.Setenv("XDG_DATA_HOME", s.Data)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(s.Home, ".config"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(s.Home, ".cache"))
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
	t.Setenv("DISPLAY", "")
	// The D-Bus library would also find a systemd user bus on its own.
	old := userBusPath
	userBusPath = func() string { return filepath.Join(root, "no-user-bus") }
	t.Cleanup(func() { userBusPath = old })
	return s
}

// startKeyring runs a private dbus-daemon and gnome-keyring-daemon (secrets
// component, login collection created and unlocked) in the sandbox, points
// DBUS_SESSION_BUS_ADDRESS at it, and waits until the default collection
// answers. Both are stopped, by PID, when the test ends.
func startKeyring(t *testing.T, s *sandbox) {
	t.Helper()
	dbusDaemon := need(t, "dbus-daemon")
	gkd := need(t, "gnome-keyring-daemon")
	dbusSend := need(t, "dbus-send")

	// Our own bus config: a session bus with no service directories, so
	// nothing on the machine gets activated onto it.
	busSock := filepath.Join(s.Run, "bus")
	conf := filepath.Join(s.Root, "session.conf")
	os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+busSock+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600)
	env := []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + s.Home, "TMPDIR=" + s.Tmp,
		"XDG_RUNTIME_DIR=" + s.Run, "XDG_DATA_HOME=" + s.Data,
		"XDG_CONFIG_HOME=" + filepath.Join(s.Home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(s.Home, ".cache")}

	var busLog bytes.Buffer
	bus := exec.Command(dbusDaemon, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	bus.Env = env
	bus.Stderr = &busLog
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatalf("starting dbus-daemon: %v", err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	addrCh := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		addrCh <- strings.TrimSpace(line)
		// Keep draining so the daemon never blocks on a full pipe.
		io.Copy(io.Discard, r)
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(10 * time.Second):
		t.Fatalf("dbus-daemon printed no address:\n%s", busLog.String())
	}
	if addr == "" {
		t.Fatalf("dbus-daemon printed no address:\n%s", busLog.String())
	}
	env = append(env, "DBUS_SESSION_BUS_ADDRESS="+addr)

	var keyLog bytes.Buffer
	kr := exec.Command(gkd, "--foreground", "--unlock", "--components=secrets")
	kr.Env = env
	kr.Dir = s.Home
	kr.Stdin = strings.NewReader("pw") // --unlock reads the login password from stdin
	kr.Stdout, kr.Stderr = &keyLog, &keyLog
	if err := kr.Start(); err != nil {
		t.Fatalf("starting gnome-keyring-daemon: %v", err)
	}
	exited := make(chan struct{})
	go func() { kr.Wait(); close(exited) }()
	t.Cleanup(func() {
		kr.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("gnome-keyring-daemon log:\n%s\ndbus-daemon log:\n%s", keyLog.String(), busLog.String())
		}
	})

	// Ready means: the name has an owner (asked of the bus, so nothing is
	// activated) and the default alias resolves to a collection.
	call := func(args ...string) string {
		c := exec.Command(dbusSend, append([]string{"--session", "--print-reply"}, args...)...)
		c.Env = env
		o, _ := c.CombinedOutput()
		return string(o)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("gnome-keyring-daemon exited:\n%s", keyLog.String())
		default:
		}
		if strings.Contains(call("--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"), "boolean true") &&
			strings.Contains(call("--dest=org.freedesktop.secrets", "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.ReadAlias", "string:default"), "/collection/") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Secret Service did not come up within 15s:\n%s", keyLog.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
}

// scanForTokens walks the sandbox (HOME, TMPDIR, the run dir, the lock dir)
// and any extra dirs, and fails the test if a file holds any token.
func scanForTokens(t *testing.T, tokens map[string]string, dirs ...string) {
	t.Helper()
	files := 0
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("scan %s: %v", p, err)
				return nil
			}
			files++
			for env, tok := range tokens {
				if bytes.Contains(b, []byte(tok)) {
					t.Errorf("the %s token is on disk, in %s", env, p)
				}
			}
			return nil
		})
	}
	if files == 0 {
		t.Errorf("the scan of %v found no files at all: is it looking in the right place?", dirs)
	}
}
