package envmap

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// fastOp is the op source with retry delays small enough for tests.
func fastOp(f *testenv.FakeOp, mod ...func(*OpOptions)) Source {
	o := OpOptions{Path: f.Path, BaseDelay: time.Millisecond, Environ: []string{"PATH=/usr/bin:/bin"}}
	for _, m := range mod {
		m(&o)
	}
	return NewOpSource(o)
}

func TestOpReadsToken(t *testing.T) {
	f := newFakeOp(t, "Admin Vault")
	env := []string{"PATH=/usr/bin:/bin", "OP_SERVICE_ACCOUNT_TOKEN=ops_inherited", "OP_CONNECT_TOKEN=x", "OP_ACCOUNT=my"}
	src := fastOp(f, func(o *OpOptions) { o.Environ = env })
	for env, want := range f.Tokens {
		tok, err := src.Fetch(context.Background(), Reference(f.Vault, env))
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		if got := string(tok.Reveal()); got != want {
			t.Errorf("%s: got a %d-byte token, want the %d-byte one op printed (newline trimmed)", env, len(got), len(want))
		}
	}
	runs := f.Runs(t)
	if len(runs) != 3 {
		t.Fatalf("op ran %d times, want 3", len(runs))
	}
	if want := "argv <read> <op://Admin Vault/SA - production/credential>"; !strings.Contains(strings.Join(runs, "\n"), want) {
		t.Errorf("argv %q: want the reference as one argument: %s", runs, want)
	}
	f.CheckArgv(t) // includes: OP_SERVICE_ACCOUNT_TOKEN was not passed through
}

func TestOpPassesServiceAccountTokenOnlyWhenMeant(t *testing.T) {
	f := newFakeOp(t, "Admin")
	src := fastOp(f, func(o *OpOptions) {
		o.Environ = []string{"PATH=/usr/bin:/bin", "OP_SERVICE_ACCOUNT_TOKEN=ops_meant"}
		o.PassServiceAccountToken = true
	})
	if _, err := src.Fetch(context.Background(), Reference(f.Vault, "staging")); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(f.Dir, "leaks")); len(m) != 1 {
		t.Error("PassServiceAccountToken: op did not get OP_SERVICE_ACCOUNT_TOKEN")
	}
}

// checkErr checks err is of kind, names the item or what the test wants in
// its one line, and carries a hint.
func checkErr(t *testing.T, err error, kind error, inMsg []string, inHint []string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, kind) {
		t.Fatalf("got %v (%T), want %v", err, err, kind)
	}
	if strings.Contains(e.Error(), "\n") {
		t.Errorf("error is not one line: %q", e.Error())
	}
	for _, s := range inMsg {
		if !strings.Contains(e.Error(), s) {
			t.Errorf("error %q does not mention %q", e.Error(), s)
		}
	}
	for _, s := range inHint {
		if !strings.Contains(e.HintText(), s) {
			t.Errorf("hint %q does not mention %q", e.HintText(), s)
		}
	}
	t.Logf("rssh: %v\nrssh: hint: %s", e, e.HintText())
	return e
}

func TestOpMissing(t *testing.T) {
	src := NewOpSource(OpOptions{Path: filepath.Join(t.TempDir(), "op")})
	_, err := src.Fetch(context.Background(), Reference("Admin", "production"))
	checkErr(t, err, ErrOpMissing, []string{`"SA - production"`, "not installed"}, []string{"install the 1Password CLI", "--env none"})

	// And "op" looked up on a PATH that lacks it.
	t.Setenv("PATH", t.TempDir())
	_, err = NewOpSource(OpOptions{}).Fetch(context.Background(), Reference("Admin", "production"))
	checkErr(t, err, ErrOpMissing, nil, []string{"install the 1Password CLI"})
}

func TestOpNotSignedIn(t *testing.T) {
	f := newFakeOp(t, "Admin")
	f.FailNext(t, 100, testenv.OpErrStamp+"You are not currently signed in. Please run `op signin --help` for instructions")
	_, err := fastOp(f).Fetch(context.Background(), Reference(f.Vault, "production"))
	checkErr(t, err, ErrNotSignedIn, []string{`"SA - production"`, "not signed in"}, []string{"op signin", "unlock the 1Password app", "--env none"})
	if n := len(f.Runs(t)); n != 1 {
		t.Errorf("op ran %d times for a not-signed-in failure, want 1 (not retried)", n)
	}
}

func TestOpItemNotFound(t *testing.T) {
	f := newFakeOp(t, "Admin")
	_, err := fastOp(f).Fetch(context.Background(), Reference(f.Vault, "qa"))
	e := checkErr(t, err, ErrNotFound, []string{`"SA - qa"`, `"Admin"`, "isn't an item"}, []string{`"SA - qa"`, `"Admin"`, "--env none"})
	if strings.Contains(e.Error(), "[ERROR]") {
		t.Errorf("op's log prefix kept in %q", e.Error())
	}
	if n := len(f.Runs(t)); n != 1 {
		t.Errorf("op ran %d times, want 1", n)
	}

	_, err = fastOp(f).Fetch(context.Background(), Reference("Nope", "production"))
	checkErr(t, err, ErrNotFound, []string{`"Nope"`}, []string{VaultVar})
}

const tooMany = testenv.OpErrStamp + "(429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make."

func TestOpRetries429ThenSucceeds(t *testing.T) {
	f := newFakeOp(t, "Admin")
	f.FailNext(t, 2, tooMany)
	tok, err := fastOp(f).Fetch(context.Background(), Reference(f.Vault, "production"))
	if err != nil {
		t.Fatalf("after two 429s: %v", err)
	}
	if string(tok.Reveal()) != f.Tokens["production"] {
		t.Error("wrong token after retries")
	}
	if n := len(f.Runs(t)); n != 3 {
		t.Errorf("op ran %d times, want 3 (two 429s, then the answer)", n)
	}
	f.CheckArgv(t)
}

func TestOpRetryInIsShownNotSlept(t *testing.T) {
	f := newFakeOp(t, "Admin")
	f.FailNext(t, 100, tooMany+" Please retry in 58 minutes or try other requests.")
	start := time.Now()
	_, err := fastOp(f).Fetch(context.Background(), Reference(f.Vault, "production"))
	e := checkErr(t, err, ErrRateLimited, []string{"Too Many Requests", "retry in 58 minutes"}, []string{"58 minutes", "--env none"})
	if e.RetryIn != "58 minutes" {
		t.Errorf("RetryIn = %q, want %q", e.RetryIn, "58 minutes")
	}
	if n := len(f.Runs(t)); n != 1 {
		t.Errorf("op ran %d times, want 1: a wait longer than the retry budget ends the fetch", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v: the wait was slept through", d)
	}
}

func TestOpTransientRetriesAreBounded(t *testing.T) {
	f := newFakeOp(t, "Admin")
	f.FailNext(t, 100, testenv.OpErrStamp+`Get "https://my.1password.com/api/v2/account": dial tcp: lookup my.1password.com: no such host`)
	_, err := fastOp(f, func(o *OpOptions) { o.Attempts = 3 }).Fetch(context.Background(), Reference(f.Vault, "production"))
	checkErr(t, err, ErrTransient, []string{"no such host", "after 3 attempts"}, []string{"network"})
	if n := len(f.Runs(t)); n != 3 {
		t.Errorf("op ran %d times, want 3 (the attempt bound)", n)
	}

	// The time bound: a budget smaller than the first backoff stops after one run.
	f2 := newFakeOp(t, "Admin")
	f2.FailNext(t, 100, testenv.OpErrStamp+"i/o timeout")
	_, err = fastOp(f2, func(o *OpOptions) { o.BaseDelay = time.Second; o.MaxElapsed = 100 * time.Millisecond }).
		Fetch(context.Background(), Reference(f2.Vault, "production"))
	checkErr(t, err, ErrTransient, nil, nil)
	if n := len(f2.Runs(t)); n != 1 {
		t.Errorf("op ran %d times, want 1 (the time bound)", n)
	}
}

func TestOpAttemptTimeout(t *testing.T) {
	f := newFakeOp(t, "Admin")
	f.Write(t, "hold", "")
	_, err := fastOp(f, func(o *OpOptions) { o.Attempts = 1; o.AttemptTimeout = 200 * time.Millisecond }).
		Fetch(context.Background(), Reference(f.Vault, "production"))
	checkErr(t, err, ErrTransient, []string{"did not answer"}, nil)
}

func TestRetryInParsing(t *testing.T) {
	for msg, want := range map[string]time.Duration{
		"Please retry in 58 minutes or try other requests.": 58 * time.Minute,
		"Try again in 1 hour 5 minutes":                     time.Hour + 5*time.Minute,
		"retry in 30 seconds.":                              30 * time.Second,
		"Too Many Requests":                                 0,
	} {
		if got := retryInDuration(retryInPhrase(msg)); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}
