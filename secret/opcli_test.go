package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/internal/testenv"
)

// newOpBackend is the op backend against a fake op holding values (name →
// value, at op://vault/NAME/credential) with the fake's token.
func newOpBackend(t testing.TB, values map[string][]byte) (Backend, *testenv.FakeSecretOp, map[string]string) {
	t.Helper()
	refs := map[string]string{}
	table := map[string][]byte{}
	for name, v := range values {
		ref := "op://vault/" + name + "/credential"
		refs[name] = ref
		table[ref] = v
	}
	fake := testenv.NewFakeSecretOp(t, table)
	b, err := NewOpBackend(OpOptions{Token: envmap.NewToken([]byte(fake.Token)),
		Environ: fake.Env([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), TokenEnv + "=ops_inherited", "OP_CONNECT_TOKEN=x"})})
	if err != nil {
		t.Fatal(err)
	}
	return b, fake, refs
}

func TestOpBackendValuesByteExact(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "X")
	values := testenv.TrickyValues(mark)
	values["empty"] = []byte{}
	b, fake, refs := newOpBackend(t, values)
	ctx := context.Background()

	// One reference: one op read.
	got, err := b.ResolveAll(ctx, []string{refs["newlines"]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0], values["newlines"]) {
		t.Errorf("op read: got %q, want %q", got[0], values["newlines"])
	}
	if runs := fake.Runs(t); len(runs) != 1 || runs[0].Argv[0] != "read" {
		t.Fatalf("one reference ran op %d times: %+v", len(runs), runs)
	}

	// A batch, with a duplicate: one op inject, every value byte-exact.
	var batch []string
	var want [][]byte
	for name, v := range values {
		batch = append(batch, refs[name])
		want = append(want, v)
	}
	batch = append(batch, refs["quotes"])
	want = append(want, values["quotes"])
	got, err = b.ResolveAll(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: got %q, want %q", batch[i], got[i], want[i])
		}
	}
	got[len(got)-1][0] = 'Z' // the duplicate owns its bytes
	for i := range batch[:len(batch)-1] {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s changed with its duplicate", batch[i])
		}
	}
	runs := fake.Runs(t)
	if len(runs) != 2 || runs[1].Argv[0] != "inject" || len(runs[1].Argv) != 1 {
		t.Errorf("a batch ran op as %+v, want one op inject", runs[1:])
	}
	fake.CheckRuns(t)
	if _, err := os.Stat(mark); err == nil {
		t.Error("a value ran as a shell command")
	}
}

func TestOpBackendErrors(t *testing.T) {
	b, fake, refs := newOpBackend(t, map[string][]byte{"a": []byte("value-of-a"), "b": []byte("value-of-b")})
	ctx := context.Background()
	missing := "op://vault/nope/credential"

	// A malformed reference: op never runs.
	_, err := b.ResolveAll(ctx, []string{refs["a"], "op://vault/x"})
	var re *RefError
	if !errors.As(err, &re) || len(fake.Runs(t)) != 0 {
		t.Fatalf("malformed reference: %v, %d runs", err, len(fake.Runs(t)))
	}

	// One missing item in a batch: the error names it (and not the others),
	// says what op said, and is ErrNotFound.
	_, err = b.ResolveAll(ctx, []string{refs["a"], missing, refs["b"]})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing item: %v, want ErrNotFound", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"op://vault/nope/credential"`) || !strings.Contains(msg, `"nope" isn't an item in the "vault" vault`) ||
		strings.Contains(msg, refs["a"]) || strings.Contains(msg, "value-of") {
		t.Errorf("missing item: %q", msg)
	}
	var e *Error
	if !errors.As(err, &e) || len(e.Refs) != 1 || e.Refs[0] != missing || e.Hint == "" {
		t.Errorf("missing item: %+v", e)
	}

	// A rate limit: classified, with the wait 1Password asked for, and not
	// hammered one reference at a time.
	before := len(fake.Runs(t))
	fake.FailNext(t, 1, testenv.OpErrStamp+"(429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in 58 minutes or try other requests.")
	_, err = b.ResolveAll(ctx, []string{refs["a"], refs["b"]})
	if !errors.Is(err, ErrRateLimited) || !Retryable(err) || !errors.As(err, &e) || e.RetryIn.Minutes() != 58 {
		t.Errorf("rate limit: %v", err)
	}
	if n := len(fake.Runs(t)) - before; n != 1 {
		t.Errorf("a rate-limited batch ran op %d times, want 1", n)
	}

	// A wrong token: ErrAuth, and the token is nowhere in the message.
	bad, err := NewOpBackend(OpOptions{Path: fake.Path, Token: envmap.NewToken([]byte("ops_wrongtoken")), Environ: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ResolveAll(ctx, []string{refs["a"]})
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrongtoken") {
		t.Errorf("wrong token: %v", err)
	}

	// No op on PATH: ErrNoBackend with the fix.
	_, err = NewOpBackend(OpOptions{Token: envmap.NewToken([]byte("x")), Environ: []string{"PATH=" + t.TempDir()}})
	if !errors.Is(err, ErrNoBackend) || !strings.Contains(err.Error(), "not on PATH") {
		t.Errorf("no op: %v", err)
	}
}

// BenchmarkOpBackend is rssh's side of a read through the op CLI, against
// the fake op (1Password's cloud is not in it): one reference (op read)
// and a batch of ten (one op inject).
func BenchmarkOpBackend(b *testing.B) {
	values := map[string][]byte{}
	for i := range 10 {
		values[fmt.Sprintf("item%d", i)] = []byte(fmt.Sprintf("value-%d\nwith a newline", i))
	}
	be, _, refs := newOpBackend(b, values)
	var batch []string
	for _, r := range refs {
		batch = append(batch, r)
	}
	ctx := context.Background()
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.ResolveAll(ctx, batch[:1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch10", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.ResolveAll(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// An op inject that leaves a {{ … }} tag as text must not have the tag
// taken for the value: the batch falls back to op read.
func TestOpBackendInjectLeftTagAsText(t *testing.T) {
	fake := testenv.NewFakeSecretOp(t, map[string][]byte{
		"op://SA - dev/GitHub CLI Token/credential": []byte("gh-value"),
		"op://SA - dev/AWS/secret access key":       []byte("aws-value"),
	})
	os.WriteFile(filepath.Join(fake.Dir, "inject-verbatim-spaces"), nil, 0o600)
	b, err := NewOpBackend(OpOptions{Path: fake.Path, Token: envmap.NewToken([]byte(fake.Token)), Environ: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.ResolveAll(context.Background(), []string{"op://SA - dev/GitHub CLI Token/credential", "op://SA - dev/AWS/secret access key"})
	if err != nil || string(got[0]) != "gh-value" || string(got[1]) != "aws-value" {
		t.Fatalf("got %q, %v", got, err)
	}
	if runs := fake.Runs(t); len(runs) != 3 || runs[0].Argv[0] != "inject" || runs[1].Argv[0] != "read" {
		t.Errorf("runs %+v, want op inject then two op read", runs)
	}
}

// ?attribute=otp reaches op as written, alone (op read) and in a batch.
func TestOpBackendAttributeOTP(t *testing.T) {
	otp := "op://vault/GitHub/Security/one-time password?attribute=otp"
	fake := testenv.NewFakeSecretOp(t, map[string][]byte{otp: []byte("123456"), "op://vault/GitHub/password": []byte("pw")})
	b, err := NewOpBackend(OpOptions{Path: fake.Path, Token: envmap.NewToken([]byte(fake.Token)), Environ: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, refs := range [][]string{{otp}, {otp, "op://vault/GitHub/password"}} {
		got, err := b.ResolveAll(context.Background(), refs)
		if err != nil || string(got[0]) != "123456" {
			t.Errorf("%q: %q, %v", refs, got, err)
		}
	}
	if runs := fake.Runs(t); len(runs) != 2 || runs[0].Argv[2] != otp || runs[1].Argv[0] != "inject" {
		t.Errorf("runs %+v", runs)
	}
}
