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

// Every row of the keyword table parses, or is an alias of one that does
// (no chains), and a directive is never an alias.
func TestKeywordTable(t *testing.T) {
	for name, kw := range keywords {
		switch {
		case kw.alias != "":
			target, ok := keywords[kw.alias]
			if !ok || target.parse == nil || target.alias != "" {
				t.Errorf("%s: alias of %q, which is not a parsing row", name, kw.alias)
			}
		case kw.parse == nil:
			t.Errorf("%s: no parser", name)
		}
		if name != asciiLower(name) {
			t.Errorf("%s: not lowercase", name)
		}
	}
	for _, d := range []string{"host", "match", "include"} {
		if !keywords[d].directive {
			t.Errorf("%s is not a directive", d)
		}
	}
}
