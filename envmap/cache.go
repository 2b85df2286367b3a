package envmap

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Cache keeps tokens in the OS keychain, keyed by admin vault and
// environment, with the time each was fetched. Implementations are safe for
// concurrent use. A cache never falls back to a file.
type Cache interface {
	// Get returns the cached token and when it was fetched; ok is false on a
	// miss (including an entry the keychain could not decrypt).
	Get(vault, env string) (tok Token, fetched time.Time, ok bool, err error)
	// Put stores a copy of t; the caller keeps (and wipes) its own.
	Put(vault, env string, t Token, fetched time.Time) error
	// Delete removes the entry; deleting a missing entry is not an error.
	Delete(vault, env string) error
	// List returns every cached entry's vault, environment and fetch time,
	// never a value, sorted by vault then environment.
	List() ([]Entry, error)
	// String says which keychain this is, or why there is none.
	String() string
}

// Entry describes a cached token without its value.
type Entry struct {
	Vault   string
	Env     string
	Fetched time.Time
}

// OpenCache returns the OS keychain's cache when one is reachable (macOS
// Keychain; on Linux a Secret Service on the D-Bus session bus, with its
// default collection unlocked), and otherwise a cache that stores nothing.
// Which one, and why there is no keychain, is logged once at debug level
// (rssh -v). It never prompts and never starts a D-Bus daemon.
func OpenCache(log *slog.Logger) Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := openKeychain()
	if err != nil {
		c = NoCache(err.Error())
		log.Debug("token cache: none: " + err.Error() + "; op runs on every connection")
		return c
	}
	log.Debug("token cache: " + c.String())
	return c
}

// Persistent reports whether c keeps tokens (a keychain), rather than being
// the no-cache fallback.
func Persistent(c Cache) bool {
	_, none := c.(noCache)
	return !none
}

// NoCache is a cache that stores nothing; reason says why (for String).
func NoCache(reason string) Cache { return noCache{reason} }

type noCache struct{ reason string }

func (noCache) Get(string, string) (Token, time.Time, bool, error) {
	return Token{}, time.Time{}, false, nil
}
func (noCache) Put(string, string, Token, time.Time) error { return nil }
func (noCache) Delete(string, string) error                { return nil }
func (noCache) List() ([]Entry, error)                     { return nil, nil }
func (c noCache) String() string {
	if c.reason == "" {
		return "none"
	}
	return "none (" + c.reason + ")"
}

var _ Cache = noCache{}

// Keychain attributes shared by the platform caches. The schema name lets a
// keychain viewer (seahorse, Keychain Access) group rssh's items and lets
// List find them without reading any value.
const (
	itemSchema   = "org.rssh.ServiceAccountToken"
	attrSchema   = "xdg:schema"
	attrVault    = "rssh-vault"
	attrEnv      = "rssh-env"
	attrFetched  = "rssh-fetched"
	fetchedFmt   = time.RFC3339Nano
	keychainName = "rssh"
)

func itemLabel(vault, env string) string {
	return fmt.Sprintf("rssh: %s token (vault %s)", ItemName(env), vault)
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Vault, b.Vault), cmp.Compare(a.Env, b.Env))
	})
}
