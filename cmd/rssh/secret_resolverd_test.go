package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
)

// Without -tags sdk, --backend sdk says how to get it and auto is op; the
// daemon refuses a backend it does not have.
func TestSDKBackendNotBuiltIn(t *testing.T) {
	if sdkBuiltIn() {
		t.Skip("this build has the SDK")
	}
	getenv := func(k string) string { return map[string]string{secret.TokenEnv: "ops_test"}[k] }
	_, err := openSecretBackend("sdk", "", getenv)
	var h *hintError
	if !errors.As(err, &h) || !strings.Contains(h.hint, "-tags sdk") {
		t.Errorf("--backend sdk: %v", err)
	}
	if _, ok := sdkBackend("auto", envmap.Token{}); ok {
		t.Error("auto chose the resolver without the SDK")
	}
	var stderr bytes.Buffer
	if code := runSecretResolverd([]string{"--backend", "sdk"}, stdio{err: &stderr}, getenv); code == 0 || !strings.Contains(stderr.String(), "not built into this rssh") {
		t.Errorf("resolverd without the SDK: %d %q", code, stderr.String())
	}
}

type stubBackend struct {
	name  string
	err   error
	calls int
}

func (s *stubBackend) Name() string { return s.name }
func (s *stubBackend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	return [][]byte{[]byte(s.name)}, nil
}

// auto with the SDK: the resolver; op only when the resolver cannot run at
// all, never when 1Password itself failed.
func TestFallbackBackend(t *testing.T) {
	op := &stubBackend{name: "op"}
	second := func() (secret.Backend, error) { return op, nil }
	for _, c := range []struct {
		err    error
		want   string
		wantOp int
	}{
		{nil, "sdk", 0},
		{&secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: starting the daemon: x"}, "op", 1},
		{&secret.Error{Kind: secret.ErrTransient, Msg: "cannot reach 1Password"}, "", 0},
	} {
		op.calls = 0
		f := &fallbackBackend{primary: &stubBackend{name: "sdk", err: c.err}, second: second}
		v, err := f.ResolveAll(context.Background(), []string{"op://v/i/f"})
		if c.want == "" {
			if !errors.Is(err, secret.ErrTransient) {
				t.Errorf("%v: got %v", c.err, err)
			}
		} else if err != nil || string(v[0]) != c.want {
			t.Errorf("%v: got %q %v, want %s", c.err, v, err, c.want)
		}
		if op.calls != c.wantOp {
			t.Errorf("%v: op called %d times", c.err, op.calls)
		}
	}
}
