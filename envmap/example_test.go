package envmap_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/rssh/rssh/envmap"
)

// How rssh wires the package for `rssh host`: validate before dialing, look
// in the cache alongside the handshake, and run op only once the host key is
// verified.
func Example() {
	log := slog.Default()
	env := "production" // from config: the winning SetEnv's RSSH_ENV, or --env

	// Before any network: both fail with a hint ("rssh: hint: …").
	if err := envmap.ValidName(env); err != nil {
		return
	}
	vault, err := envmap.VaultFromEnv(os.Getenv)
	if err != nil {
		return
	}

	r := &envmap.Resolver{Cache: envmap.OpenCache(log), Log: log}

	// Alongside the handshake: a cache lookup never runs op.
	tok, ok := r.Cached(vault, env)

	// … once the host key is verified:
	if !ok {
		tok, err = r.Token(context.Background(), vault, env)
		if err != nil {
			return // one line plus its hint; the command never starts
		}
	}
	defer tok.Wipe()
	_ = tok.Reveal() // the bytes for the env request; never a string, never logged
}
