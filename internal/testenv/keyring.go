package testenv

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/keybase/dbus"
)

// Sandbox is a private HOME, TMPDIR and XDG dirs under one root (short:
// the bus socket lives in Run and unix socket paths are limited to ~108
// bytes), which a secret-hygiene scan can cover whole.
type Sandbox struct {
	Root, Home, Tmp, Run, Data string
}

// NewSandbox makes the dirs, mode 0700.
func NewSandbox(t TB) *Sandbox {
	t.Helper()
	root, err := os.MkdirTemp("", "rssh-sbx-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	s := &Sandbox{Root: root, Home: filepath.Join(root, "home"), Tmp: filepath.Join(root, "tmp"),
		Run: filepath.Join(root, "run")}
	s.Data = filepath.Join(s.Home, ".local", "share")
	for _, d := range []string{s.Home, s.Tmp, s.Run, s.Data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return s
}

// Env is the sandbox's environment variables, for a child process.
func (s *Sandbox) Env() []string {
	return []string{"HOME=" + s.Home, "TMPDIR=" + s.Tmp, "XDG_RUNTIME_DIR=" + s.Run, "XDG_DATA_HOME=" + s.Data,
		"XDG_CONFIG_HOME=" + filepath.Join(s.Home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(s.Home, ".cache")}
}

// StartKeyring runs a private dbus-daemon and gnome-keyring-daemon (secrets
// component, login collection created and unlocked) in the sandbox, waits
// until the default collection answers, and returns the bus address for
// DBUS_SESSION_BUS_ADDRESS. Both are stopped, by PID, when the test ends.
func StartKeyring(t TB, s *Sandbox) string {
	t.Helper()
	dbusDaemon := Need(t, "dbus-daemon", "dbus")
	gkd := Need(t, "gnome-keyring-daemon", "gnome-keyring")
	dbusSend := Need(t, "dbus-send", "dbus")

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
	env := append([]string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"}, s.Env()...)

	var busLog bytes.Buffer
	bus := exec.Command(dbusDaemon, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	bus.Env = env
	bus.Stderr = &busLog
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatalf("%v", err)
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
	return addr
}

// ScanForSecrets walks dirs and fails the test if any regular file holds
// any of the secrets (name → value).
func ScanForSecrets(t TB, tokens map[string]string, dirs ...string) {
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

// SetKeyringAttr sets the attribute name to value on every item of the
// Secret Service on the bus at addr whose attributes include all of match,
// keeping the items' other attributes and secrets, and returns how many
// items it changed. A test uses it to change what a stored entry says (its
// fetch time, to move the clock without sleeping) from outside the code
// under test.
func SetKeyringAttr(t TB, addr string, match map[string]string, name, value string) int {
	t.Helper()
	conn, err := dbus.Dial(addr)
	if err != nil {
		t.Fatalf("dialing the test bus: %v", err)
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		t.Fatalf("authenticating to the test bus: %v", err)
	}
	if err := conn.Hello(); err != nil {
		t.Fatalf("the test bus: %v", err)
	}
	var unlocked, locked []dbus.ObjectPath
	err = conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets").
		Call("org.freedesktop.Secret.Service.SearchItems", 0, match).Store(&unlocked, &locked)
	if err != nil {
		t.Fatalf("searching the Secret Service for %v: %v", match, err)
	}
	for _, p := range append(unlocked, locked...) {
		item := conn.Object("org.freedesktop.secrets", p)
		var attrs map[string]string
		if err := item.StoreProperty("org.freedesktop.Secret.Item.Attributes", &attrs); err != nil {
			t.Fatalf("reading %s's attributes: %v", p, err)
		}
		attrs[name] = value
		if err := item.SetProperty("org.freedesktop.Secret.Item.Attributes", dbus.MakeVariant(attrs)); err != nil {
			t.Fatalf("setting %s's attributes: %v", p, err)
		}
	}
	return len(unlocked) + len(locked)
}
