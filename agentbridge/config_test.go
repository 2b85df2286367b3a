package agentbridge

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

func TestConfigValidation(t *testing.T) {
	dir := testenv.ShareDir(t)
	good := "SHA256:" + strings.Repeat("A", 43)
	base := func() Config {
		return Config{Listen: filepath.Join(dir, "b.sock"), Upstream: filepath.Join(dir, "a.sock")}
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"md5 key":           {func(c *Config) { c.AllowKeys = []string{"MD5:" + strings.Repeat("ab:", 15) + "ab"} }, `--allow-key "MD5:ab:`},
		"bare base64":       {func(c *Config) { c.AllowKeys = []string{strings.Repeat("A", 43)} }, "want OpenSSH's SHA256:"},
		"short digest":      {func(c *Config) { c.AllowHostKeys = []string{"SHA256:abc"} }, `--allow-host-key "SHA256:abc": not a SHA256 digest`},
		"padded digest":     {func(c *Config) { c.AllowHostKeys = []string{good + "="} }, "not a SHA256 digest"},
		"relative listen":   {func(c *Config) { c.Listen = "bridge.sock" }, "--listen \"bridge.sock\": not an absolute path"},
		"long upstream":     {func(c *Config) { c.Upstream = "/" + strings.Repeat("x", 200) }, "longer than"},
		"listen = upstream": {func(c *Config) { c.Upstream = c.Listen }, "are the same socket"},
		"huge messages":     {func(c *Config) { c.MaxMessage = 1 << 30 }, "max message"},
		"tiny messages":     {func(c *Config) { c.MaxMessage = 10 }, "at least 1024"},
		"negative conns":    {func(c *Config) { c.MaxConns = -1 }, "max connections"},
		"negative idle":     {func(c *Config) { c.IdleTimeout = -time.Second }, "idle timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
			if msg := err.Error(); strings.HasSuffix(msg, ".") || msg[0] != strings.ToLower(msg)[0] {
				t.Errorf("error %q: want lowercase, no trailing period", msg)
			}
		})
	}

	b, err := New(Config{Listen: base().Listen, Upstream: base().Upstream, AllowKeys: []string{good}})
	if err != nil {
		t.Fatal(err)
	}
	if c := b.cfg; len(c.AllowUIDs) != 1 || c.AllowUIDs[0] != 0 || c.MaxConns != DefaultMaxConns ||
		c.MaxMessage != DefaultMaxMessage || c.IdleTimeout != DefaultIdleTimeout || c.Log == nil {
		t.Errorf("defaults not filled: %+v", c)
	}
	b, err = New(Config{Listen: base().Listen, Upstream: base().Upstream, AllowUIDs: []uint32{}})
	if err != nil || len(b.allowUIDs) != 0 {
		t.Errorf("an empty, non-nil AllowUIDs must mean the owner only: %v %v", b.allowUIDs, err)
	}
}

func TestDefaults(t *testing.T) {
	env := map[string]string{"SSH_AUTH_SOCK": "/run/agent.sock", "HOME": "/home/u"}
	if got := DefaultUpstream(func(k string) string { return env[k] }); got != "/run/agent.sock" {
		t.Errorf("DefaultUpstream with SSH_AUTH_SOCK = %q", got)
	}
	delete(env, "SSH_AUTH_SOCK")
	if got, want := DefaultUpstream(func(k string) string { return env[k] }), "/home/u/"+onePasswordSocket; got != want {
		t.Errorf("DefaultUpstream without SSH_AUTH_SOCK = %q, want %q", got, want)
	}
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if p, err := DefaultListenPath(); err != nil || !filepath.IsAbs(p) || len(p) > maxUnixPath {
		t.Errorf("DefaultListenPath = %q, %v", p, err)
	} else {
		t.Logf("DefaultListenPath = %s", p)
	}
}

// A stale socket file is replaced, a live one is ErrAlreadyRunning, a
// regular file is left alone; Serve removes its socket when cancelled.
func TestListenLifecycle(t *testing.T) {
	dir := testenv.ShareDir(t)
	sock := filepath.Join(dir, "sub", "bridge.sock")
	upstream := filepath.Join(dir, "agent.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}

	// A stale socket: bound, then closed without unlinking, as after a crash.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	b := startBridge(t, Config{Listen: sock, Upstream: upstream}, nil)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != socketMode {
		t.Fatalf("socket %v, %v: want mode %v", fi.Mode(), err, os.FileMode(socketMode))
	}
	if !Alive(sock) {
		t.Fatal("Alive reports a serving bridge as dead")
	}

	second, err := New(Config{Listen: sock, Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Serve(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second bridge on a live socket: %v, want ErrAlreadyRunning", err)
	}
	if !Alive(b.sock) {
		t.Fatal("the second bridge disturbed the first one's socket")
	}

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep me"), 0o644)
	third, _ := New(Config{Listen: file, Upstream: upstream})
	if err := third.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listening on a regular file: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal("a regular file at the listen path was removed")
	}

	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	fourth, _ := New(Config{Listen: filepath.Join(open, "b.sock"), Upstream: upstream})
	if err := fourth.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("listening in a world-writable directory: %v", err)
	}
}
