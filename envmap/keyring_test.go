//go:build linux

package envmap

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

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

func startKeyring(t *testing.T, s *sandbox) {
	t.Helper()
	addr := testenv.StartKeyring(t, &testenv.Sandbox{Root: s.Root, Home: s.Home, Tmp: s.Tmp, Run: s.Run, Data: s.Data})
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
}

func scanForTokens(t *testing.T, tokens map[string]string, dirs ...string) {
	t.Helper()
	testenv.ScanForSecrets(t, tokens, dirs...)
}
