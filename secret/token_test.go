package secret

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadTokenOrder(t *testing.T) {
	dir := t.TempDir()
	flagFile := filepath.Join(dir, "flag-token")
	os.WriteFile(flagFile, []byte("ops_from_flag\n"), 0o600)
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o700)
	os.WriteFile(filepath.Join(creds, TokenCredential), []byte("  ops_from_credential\r\n"), 0o400)
	emptyCreds := filepath.Join(dir, "empty-creds")
	os.Mkdir(emptyCreds, 0o700)

	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"flag wins", flagFile, map[string]string{"CREDENTIALS_DIRECTORY": creds, TokenEnv: "ops_env"}, "ops_from_flag"},
		{"credential next", "", map[string]string{"CREDENTIALS_DIRECTORY": creds, TokenEnv: "ops_env"}, "ops_from_credential"},
		{"credential dir without it", "", map[string]string{"CREDENTIALS_DIRECTORY": emptyCreds, TokenEnv: "ops_env"}, "ops_env"},
		{"variable last", "", map[string]string{TokenEnv: "ops_env"}, "ops_env"},
	}
	for _, c := range cases {
		tok, err := LoadToken(c.file, env(c.env))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(tok.Reveal()) != c.want {
			t.Errorf("%s: got another token", c.name)
		}
		if s := fmt.Sprintf("%v %s %+v %#v", tok, tok, tok, tok); strings.Contains(s, "ops_") {
			t.Errorf("%s: the token prints: %s", c.name, s)
		}
	}
}

func TestLoadTokenErrors(t *testing.T) {
	dir := t.TempDir()
	none := func(string) string { return "" }
	_, err := LoadToken("", none)
	if !errors.Is(err, ErrNoToken) {
		t.Fatalf("no token anywhere: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"--token-file", "$CREDENTIALS_DIRECTORY/op-service-account-token", "OP_SERVICE_ACCOUNT_TOKEN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not name %s", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("%q is more than one line", msg)
	}

	missing := filepath.Join(dir, "missing")
	// An asked-for file that is missing is an error, not a fall-through.
	_, err = LoadToken(missing, func(k string) string { return map[string]string{TokenEnv: "ops_env"}[k] })
	if err == nil || !strings.Contains(err.Error(), "--token-file "+missing) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing --token-file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n\n"), 0o600)
	if _, err = LoadToken(empty, none); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v", err)
	}
	twoLines := filepath.Join(dir, "two")
	os.WriteFile(twoLines, []byte("ops_secretpart\nmore\n"), 0o600)
	if _, err = LoadToken(twoLines, none); err == nil || strings.Contains(err.Error(), "secretpart") {
		t.Errorf("two-line token file: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, maxTokenFile+10), 0o600)
	if _, err = LoadToken(big, none); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("huge token file: %v", err)
	}
}
