package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// UseKeychain, Apple's keyword, is accepted (and ignored) by rssh built for
// darwin, and a bad configuration option elsewhere, as in OpenSSH.
func TestUseKeychainByPlatform(t *testing.T) {
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "config")
	if err := os.WriteFile(cfg, []byte("Host *\n  UseKeychain yes\n  AddKeysToAgent yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Resolve(Request{Host: "h", ConfigFile: cfg, Home: tmp, EnvHome: tmp, LocalUser: "tester"})
	if runtime.GOOS == "darwin" {
		if err != nil || c.AddKeysToAgent != "yes" {
			t.Fatalf("darwin: Resolve = %v, %v; want UseKeychain accepted and the rest read", c, err)
		}
		return
	}
	var bad *BadOptions
	if !errors.As(err, &bad) || len(bad.Errs) != 1 || bad.Errs[0].Msg != "bad configuration option: usekeychain" || bad.Errs[0].Pos.Line != 2 {
		t.Fatalf("%s: Resolve error = %v, want line 2 a bad configuration option", runtime.GOOS, err)
	}
	if _, ok := keywords["usekeychain"]; ok {
		t.Error("usekeychain is a keyword off darwin")
	}
}
