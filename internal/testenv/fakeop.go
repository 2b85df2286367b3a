package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FakeOp is a stand-in for the 1Password CLI: a shell script that answers
// `op read` for three environments of one vault, records every argv to
// DIR/argv, and is steered by files in its directory:
//
//	fail, failmsg  fail the next N runs (N in fail) printing failmsg on stderr
//	hold           stop after starting (touching started.PID) until release exists
//	signedout      `op whoami` says the account is not signed in
//
// The script holds each token in two halves, so no file on disk contains a
// whole token: a test can scan the disk for tokens and find none.
type FakeOp struct {
	Dir    string
	Path   string
	Vault  string
	Tokens map[string]string // env → token
}

// OpErrStamp is how op 2.x starts an error line.
const OpErrStamp = "[ERROR] 2026/05/04 10:32:55 "

func NewFakeOp(t TB, vault string) *FakeOp {
	t.Helper()
	f := &FakeOp{Dir: t.TempDir(), Vault: vault, Tokens: map[string]string{}}
	f.Path = filepath.Join(f.Dir, "op")
	var cases strings.Builder
	for _, env := range []string{"development", "staging", "production"} {
		b := make([]byte, 24)
		rand.Read(b)
		tok := "ops_" + hex.EncodeToString(b)
		f.Tokens[env] = tok
		half := len(tok) / 2
		fmt.Fprintf(&cases, "%s) printf '%%s%%s\\n' '%s' '%s' ;;\n", ShQuote("op://"+vault+"/SA - "+env+"/credential"), tok[:half], tok[half:])
	}
	script := `#!/bin/sh
d=` + ShQuote(f.Dir) + `
{ printf 'argv'; for a in "$@"; do printf ' <%s>' "$a"; done; printf '\n'; } >> "$d/argv"
if [ -n "${OP_SERVICE_ACCOUNT_TOKEN+set}" ] || [ -n "${OP_CONNECT_TOKEN+set}" ]; then echo "$$" >> "$d/leaks"; fi
if [ -e "$d/hold" ]; then
	: > "$d/started.$$"
	i=0
	while [ ! -e "$d/release" ]; do
		i=$((i+1)); [ "$i" -gt 3000 ] && { echo 'fake op: never released' >&2; exit 9; }
		sleep 0.01
	done
fi
if [ -s "$d/fail" ]; then
	n=$(cat "$d/fail")
	if [ "$n" -gt 0 ]; then
		echo $((n-1)) > "$d/fail"
		cat "$d/failmsg" >&2
		exit 1
	fi
fi
if [ "$#" -eq 1 ] && [ "$1" = whoami ]; then
	if [ -e "$d/signedout" ]; then echo '` + OpErrStamp + `account is not signed in' >&2; exit 1; fi
	echo 'URL:        https://example.1password.com'; exit 0
fi
if [ "$#" -ne 2 ] || [ "$1" != read ]; then echo '` + OpErrStamp + `unknown command' >&2; exit 2; fi
case "$2" in
` + cases.String() + `*)
	rest=${2#op://}; vault=${rest%%/*}; item=${rest#*/}; item=${item%/*}
	if [ "$vault" != ` + ShQuote(vault) + ` ]; then
		echo '` + OpErrStamp + `"'"$vault"'" isn'"'"'t a vault in this account. Specify the vault with its ID or name.' >&2
	else
		echo '` + OpErrStamp + `"'"$item"'" isn'"'"'t an item in the "'"$vault"'" vault. Specify the item with its UUID, name, or domain.' >&2
	fi
	exit 1 ;;
esac
`
	if err := os.WriteFile(f.Path, []byte(script), 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	return f
}

func ShQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

// failNext makes the next n runs fail with msg on stderr.
func (f *FakeOp) FailNext(t TB, n int, msg string) {
	t.Helper()
	f.Write(t, "failmsg", msg+"\n")
	f.Write(t, "fail", fmt.Sprintf("%d\n", n))
}

func (f *FakeOp) Write(t TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.Dir, name), []byte(content), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
}

// runs returns the argv of every run so far, one line each.
func (f *FakeOp) Runs(t TB) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.Dir, "argv"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// checkArgv checks every run was `op read <ref>` with one of our references
// and that no token is in any argv or leaked into op's environment.
func (f *FakeOp) CheckArgv(t TB) {
	t.Helper()
	for _, line := range f.Runs(t) {
		if !strings.HasPrefix(line, "argv <read> <op://") {
			t.Errorf("op ran as %q, want: op read op://…", line)
		}
		for _, tok := range f.Tokens {
			if strings.Contains(line, tok) {
				t.Errorf("a token is in op's argv: %q", line)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(f.Dir, "leaks")); err == nil {
		t.Errorf("op ran with OP_SERVICE_ACCOUNT_TOKEN or OP_CONNECT_TOKEN in its environment (pids %q)", b)
	}
}

// WaitFile waits until a file matching pattern exists.
func WaitFile(t TB, pattern string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", pattern, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
