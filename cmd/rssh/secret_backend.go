package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rssh/rssh/secret"
	"github.com/rssh/rssh/secretfwd"
)

// secretBackendEnv chooses the backend when --backend is not given.
const secretBackendEnv = "RSSH_SECRET_BACKEND"

// openSecretBackend opens the backend every secret command resolves with.
// name is --backend: op, sdk or auto; "" takes $RSSH_SECRET_BACKEND, and
// auto when that is unset too. The token comes from tokenFile
// (--token-file), $CREDENTIALS_DIRECTORY/op-service-account-token or
// $OP_SERVICE_ACCOUNT_TOKEN, in that order (secret.LoadToken).
//
// In a build with the SDK (-tags sdk), sdk is the SDK in this process and
// auto the per-session resolver over it (secret_resolverd.go); otherwise
// auto is the op CLI.
func openSecretBackend(name, tokenFile string, getenv func(string) string) (secret.Backend, error) {
	from := "--backend"
	if name == "" {
		name, from = getenv(secretBackendEnv), secretBackendEnv
	}
	if name == "" {
		name = "auto"
	}
	switch name {
	case "op", "sdk", "auto":
	case "forward":
		return forwardBackend(getenv)
	default:
		return nil, &hintError{err: fmt.Errorf("%s %q: unknown backend", from, name), hint: "choose one of " + secretBackendHelp}
	}
	tok, err := secret.LoadToken(tokenFile, getenv)
	if err != nil {
		// No token here, but the laptop may answer through the forwarded
		// agent (rssh --forward-secrets): the token never left it.
		if name == "auto" && errors.Is(err, secret.ErrNoToken) {
			if c := (&secretfwd.Client{Socket: getenv("SSH_AUTH_SOCK")}); c.Socket != "" && c.Available(context.Background()) {
				return c, nil
			}
		}
		return nil, err
	}
	if b, ok := sdkBackend(name, tok); ok {
		return b, nil
	}
	switch name {
	case "op", "auto":
		b, err := secret.NewOpBackend(secret.OpOptions{Token: tok, Environ: os.Environ()})
		if err != nil {
			tok.Wipe()
			return nil, err
		}
		return b, nil
	}
	tok.Wipe()
	return nil, &hintError{err: errors.New("--backend sdk: the 1Password SDK backend is not in this build of rssh"), hint: "use --backend op (the 1Password CLI), or an rssh built with -tags sdk"}
}

// forwardBackend is RSSH_SECRET_BACKEND=forward: the laptop resolves,
// through the agent socket of a session started with --forward-secrets.
func forwardBackend(getenv func(string) string) (secret.Backend, error) {
	c := &secretfwd.Client{Socket: getenv("SSH_AUTH_SOCK")}
	if c.Socket == "" {
		return nil, &hintError{err: errors.New("backend forward: SSH_AUTH_SOCK is not set"), hint: "connect with rssh --forward-secrets HOST (or RsshForwardSecrets yes)"}
	}
	if err := c.Check(context.Background()); err != nil {
		if errors.Is(err, secretfwd.ErrNotForwarding) {
			return nil, &hintError{err: fmt.Errorf("backend forward: the agent at %s does not forward secrets", c.Socket), hint: "connect with rssh --forward-secrets HOST (or RsshForwardSecrets yes)"}
		}
		return nil, err
	}
	return c, nil
}
