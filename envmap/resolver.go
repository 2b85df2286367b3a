package envmap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// DefaultTTL is how long a cached token is used before it is fetched again.
const DefaultTTL = 8 * time.Hour

// Resolver gets an environment's token: from the cache while it is fresh,
// otherwise from the source, at most once at a time per vault and
// environment across all rssh processes of this user.
type Resolver struct {
	Cache  Cache  // nil: no cache
	Source Source // nil: NewOpSource(OpOptions{Log: Log})
	// TTL is how long a cached token is used (default DefaultTTL).
	TTL time.Duration
	// LockDir holds the lock files that make concurrent cold-cache fetches
	// run op once; default $XDG_RUNTIME_DIR/rssh or $TMPDIR/rssh-<uid>.
	LockDir string
	Log     *slog.Logger
	Now     func() time.Time // default time.Now
}

// Token returns env's token from vault. The caller owns the result and
// should Wipe it once sent.
//
// A cache hit within the TTL returns at once; otherwise Token takes the
// lock for (vault, env), looks at the cache again (another process may just
// have fetched), and only then runs the source and stores what it got. A
// cache that fails is treated as a miss: the token still arrives.
func (r *Resolver) Token(ctx context.Context, vault, env string) (Token, error) {
	if err := checkKey(vault, env); err != nil {
		return Token{}, err
	}
	if tok, ok := r.fresh(vault, env); ok {
		return tok, nil
	}
	unlock := r.lock(ctx, vault, env)
	if err := context.Cause(ctx); err != nil {
		return Token{}, err
	}
	defer unlock()
	if tok, ok := r.fresh(vault, env); ok {
		return tok, nil
	}
	return r.fetch(ctx, vault, env)
}

// Cached returns env's token if the cache holds a fresh one, without
// running op or taking the lock: safe to call before the host key is
// verified, alongside the handshake.
func (r *Resolver) Cached(vault, env string) (Token, bool) {
	if checkKey(vault, env) != nil {
		return Token{}, false
	}
	return r.fresh(vault, env)
}

// Refresh fetches env's token even if a fresh one is cached, and caches it.
func (r *Resolver) Refresh(ctx context.Context, vault, env string) (Token, error) {
	if err := checkKey(vault, env); err != nil {
		return Token{}, err
	}
	unlock := r.lock(ctx, vault, env)
	if err := context.Cause(ctx); err != nil {
		return Token{}, err
	}
	defer unlock()
	return r.fetch(ctx, vault, env)
}

// Clear removes cached tokens: env's in vault, or with env "" every
// environment's, and with vault "" those of every vault.
func (r *Resolver) Clear(vault, env string) error {
	if r.Cache == nil {
		return nil
	}
	if vault != "" && env != "" {
		return r.Cache.Delete(vault, env)
	}
	es, err := r.Cache.List()
	if err != nil {
		return fmt.Errorf("listing cached tokens: %w", err)
	}
	for _, e := range es {
		if (vault == "" || e.Vault == vault) && (env == "" || e.Env == env) {
			if err := r.Cache.Delete(e.Vault, e.Env); err != nil {
				return fmt.Errorf("clearing the cached %s token: %w", e.Env, err)
			}
		}
	}
	return nil
}

// List returns the cached environments and when each was fetched (never a
// value); compare Fetched with TTL for the age.
func (r *Resolver) List() ([]Entry, error) {
	if r.Cache == nil {
		return nil, nil
	}
	return r.Cache.List()
}

func checkKey(vault, env string) error {
	if err := ValidName(env); err != nil {
		return err
	}
	return validVault(vault)
}

func (r *Resolver) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Resolver) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Resolver) ttl() time.Duration {
	if r.TTL <= 0 {
		return DefaultTTL
	}
	return r.TTL
}

// fresh looks in the cache; an entry older than the TTL, or stamped in the
// future (a clock that jumped), is a miss.
func (r *Resolver) fresh(vault, env string) (Token, bool) {
	if r.Cache == nil {
		return Token{}, false
	}
	tok, fetched, ok, err := r.Cache.Get(vault, env)
	if err != nil {
		r.log().Debug("token cache: lookup failed, treating it as a miss", "env", env, "err", err)
		return Token{}, false
	}
	if !ok {
		r.log().Debug("token cache: miss", "env", env)
		return Token{}, false
	}
	age := r.now().Sub(fetched)
	if age < -time.Minute || age >= r.ttl() {
		tok.Wipe()
		r.log().Debug("token cache: expired", "env", env, "age", age.Round(time.Second))
		return Token{}, false
	}
	r.log().Debug("token cache: hit", "env", env, "age", age.Round(time.Second))
	return tok, true
}

func (r *Resolver) fetch(ctx context.Context, vault, env string) (Token, error) {
	src := r.Source
	if src == nil {
		src = NewOpSource(OpOptions{Log: r.Log})
	}
	ref := Reference(vault, env)
	r.log().Debug("fetching token", "env", env, "ref", ref)
	tok, err := src.Fetch(ctx, ref)
	if err != nil {
		return Token{}, err
	}
	if r.Cache != nil {
		if err := r.Cache.Put(vault, env, tok, r.now()); err != nil {
			r.log().Debug("token cache: store failed", "env", env, "err", err)
		}
	}
	return tok, nil
}

// lock takes the per-(vault, env) lock. Failing to lock only costs the
// single-flight guarantee, so it is logged and the fetch goes ahead; the
// returned func is always safe to call. The caller checks ctx afterwards.
func (r *Resolver) lock(ctx context.Context, vault, env string) func() {
	dir := r.LockDir
	if dir == "" {
		dir = defaultLockDir()
	}
	if err := ensurePrivateDir(dir); err != nil {
		r.log().Debug("token lock: unusable directory, fetching without it", "dir", dir, "err", err)
		return func() {}
	}
	unlock, err := lockFile(ctx, lockPath(dir, vault, env))
	if err != nil {
		if ctx.Err() == nil {
			r.log().Debug("token lock: failed, fetching without it", "err", err)
		}
		return func() {}
	}
	return unlock
}

// lockPath names the lock by a hash, since vault names are free text.
func lockPath(dir, vault, env string) string {
	h := sha256.Sum256([]byte(vault + "\x00" + env))
	return filepath.Join(dir, "token-"+env[:min(len(env), 32)]+"-"+hex.EncodeToString(h[:8])+".lock")
}
