package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
	"github.com/rssh/rssh/secret/resolverd"
	"github.com/rssh/rssh/sshproxy"
)

// newSDKBackend makes the 1Password SDK backend; nil when this binary was
// built without it (the default: see secret_sdk.go for why it is a
// separate build).
var newSDKBackend func(tok envmap.Token) (secret.Backend, error)

// sdkBuiltIn says whether --backend sdk can work in this binary.
func sdkBuiltIn() bool { return newSDKBackend != nil }

func init() { secretCommands["resolverd"] = runSecretResolverd }

// runSecretResolverd is `rssh secret resolverd [--backend sdk]`: the
// per-session resolver daemon, started by rssh itself (resolverd.Client)
// with the token on fd 3 and a ready pipe on fd 4. Not for people to run.
func runSecretResolverd(args []string, std stdio, getenv func(string) string) int {
	backend := "sdk"
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--backend" && i+1 < len(args):
			backend = args[i+1]
			i++
		default:
			fail(std.err, fmt.Errorf("secret resolverd: unknown argument %q", a))
			return sshproxy.ExitFailure
		}
	}
	var newBackend func(envmap.Token) (secret.Backend, error)
	switch backend {
	case "sdk":
		newBackend = newSDKBackend
	}
	if newBackend == nil {
		fail(std.err, fmt.Errorf("secret resolverd: backend %q is not built into this rssh", backend))
		return sshproxy.ExitFailure
	}
	// Its stderr is /dev/null (resolverd.Client starts it so): it logs
	// nothing, and its errors before "ready" reach the caller on fd 4.
	err := resolverd.RunDaemon(resolverd.DaemonOptions{Backend: backend, NewBackend: newBackend, Getenv: getenv})
	if err != nil {
		fail(std.err, err)
		return sshproxy.ExitFailure
	}
	return 0
}

// sdkBackend is --backend sdk (the SDK in this process: it compiles its
// core every time) and auto (the session's resolver daemon over the SDK,
// started if needed; the op CLI if the daemon cannot start). ok is false
// when this build has no SDK or name is op.
func sdkBackend(name string, tok envmap.Token) (b secret.Backend, ok bool) {
	if !sdkBuiltIn() {
		return nil, false
	}
	switch name {
	case "sdk":
		b, err := newSDKBackend(tok)
		return b, err == nil
	case "auto":
		exe, err := os.Executable()
		if err != nil {
			return nil, false
		}
		return &fallbackBackend{
			primary: &resolverd.Client{Token: tok, Backend: "sdk", Command: []string{exe, "secret", "resolverd", "--backend", "sdk"}},
			second: func() (secret.Backend, error) {
				return secret.NewOpBackend(secret.OpOptions{Token: tok, Environ: os.Environ()})
			},
		}, true
	}
	return nil, false
}

// fallbackBackend is auto with the SDK built in: the resolver, or the op
// CLI when the resolver cannot run at all (ErrNoBackend) and op is there.
type fallbackBackend struct {
	primary secret.Backend
	second  func() (secret.Backend, error)
}

func (f *fallbackBackend) Name() string { return f.primary.Name() }

func (f *fallbackBackend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	v, err := f.primary.ResolveAll(ctx, refs)
	if err == nil || !errors.Is(err, secret.ErrNoBackend) {
		return v, err
	}
	op, operr := f.second()
	if operr != nil {
		return nil, err // the resolver's error says more than "no op"
	}
	return op.ResolveAll(ctx, refs)
}
