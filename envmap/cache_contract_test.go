package envmap

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCacheContract holds c to the Cache contract (cache.go). Every
// implementation's test calls it: the Secret Service (keychain_linux_test.go),
// the macOS Keychain (keychain_darwin_test.go, on a Mac), the no-cache
// fallback and the in-memory fake (below). stores is false for a cache that
// stores nothing: then every Get misses and List is empty, and nothing fails.
//
// It names its vaults uniquely and looks only at, and removes, its own
// entries, so it can run against a user's real keychain.
func testCacheContract(t *testing.T, c Cache, stores bool) {
	prefix := fmt.Sprintf("rssh-contract-%d-%d", os.Getpid(), time.Now().UnixNano())
	va, vb := prefix+" A", prefix+" B"
	envs := []string{"production", "development", "c0", "c1", "c2", "c3"}
	t.Cleanup(func() {
		for _, v := range []string{va, vb} {
			for _, e := range envs {
				if err := c.Delete(v, e); err != nil {
					t.Errorf("cleanup: Delete(%q, %q): %v", v, e, err)
				}
			}
		}
	})
	mine := func() []Entry {
		t.Helper()
		es, err := c.List()
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if !slices.IsSortedFunc(es, func(a, b Entry) int {
			return strings.Compare(a.Vault+"\x00"+a.Env, b.Vault+"\x00"+b.Env)
		}) {
			t.Errorf("List is not sorted by vault then environment: %+v", es)
		}
		return slices.DeleteFunc(es, func(e Entry) bool { return !strings.HasPrefix(e.Vault, prefix) })
	}
	// A real token is ~900 bytes of base64url after "ops_".
	secret := func(tag string) []byte {
		return []byte("ops_" + tag + "_" + strings.Repeat("eyJhbGciOiJFUzI1NiIsImtpZCI6", 32))
	}
	put := func(vault, env string, val []byte, fetched time.Time) {
		t.Helper()
		tok := NewToken(bytes.Clone(val))
		if err := c.Put(vault, env, tok, fetched); err != nil {
			t.Fatalf("Put(%q, %q): %v", vault, env, err)
		}
		tok.Wipe() // the cache keeps its own copy
	}
	wantGet := func(vault, env string, val []byte, fetched time.Time) {
		t.Helper()
		tok, f, ok, err := c.Get(vault, env)
		switch {
		case err != nil:
			t.Fatalf("Get(%q, %q): %v", vault, env, err)
		case !stores || val == nil:
			if ok || !tok.IsZero() || !f.IsZero() {
				t.Fatalf("Get(%q, %q) = ok %v, %d bytes, fetched %v; want a miss", vault, env, ok, len(tok.Reveal()), f)
			}
		case !ok:
			t.Fatalf("Get(%q, %q) missed; want a hit", vault, env)
		case !bytes.Equal(tok.Reveal(), val):
			t.Fatalf("Get(%q, %q) returned %d bytes that are not the token put (%d bytes)", vault, env, len(tok.Reveal()), len(val))
		case !f.Equal(fetched):
			t.Fatalf("Get(%q, %q) fetched %v, want %v", vault, env, f, fetched)
		}
		tok.Wipe() // the caller's copy: wiping it must not touch the cache's
	}

	if c.String() == "" {
		t.Error("String is empty: it must say which keychain this is, or why there is none")
	}

	// A miss is not an error, and neither is deleting what is not there.
	wantGet(va, "production", nil, time.Time{})
	if err := c.Delete(va, "production"); err != nil {
		t.Fatalf("Delete of a missing entry: %v", err)
	}
	if es := mine(); len(es) != 0 {
		t.Fatalf("List before any Put = %+v", es)
	}

	// A round trip keeps the bytes and the instant (whatever the zone, to
	// the nanosecond); the caller's wipes touch neither copy.
	p1, t1 := secret("one"), time.Date(2026, 5, 4, 10, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	put(va, "production", p1, t1)
	wantGet(va, "production", p1, t1)
	wantGet(va, "production", p1, t1)

	// Put replaces: one entry, the new value and time.
	p2, t2 := secret("two"), t1.Add(time.Hour)
	put(va, "production", p2, t2)
	wantGet(va, "production", p2, t2)

	// Each (vault, env) is its own entry; List shows them, sorted, with
	// their fetch times and no values.
	p3, p4 := secret("three"), secret("four")
	put(va, "development", p3, t1)
	put(vb, "production", p4, t2)
	wantGet(va, "development", p3, t1)
	wantGet(vb, "production", p4, t2)
	want := []Entry{{va, "development", t1}, {va, "production", t2}, {vb, "production", t2}}
	if !stores {
		want = nil
	}
	if es := mine(); !slices.EqualFunc(es, want, func(a, b Entry) bool {
		return a.Vault == b.Vault && a.Env == b.Env && a.Fetched.Equal(b.Fetched)
	}) {
		t.Fatalf("List = %+v, want %+v", es, want)
	}

	// Delete removes that entry only.
	if err := c.Delete(va, "production"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantGet(va, "production", nil, time.Time{})
	wantGet(va, "development", p3, t1)
	wantGet(vb, "production", p4, t2)
	if es := mine(); stores && len(es) != 2 {
		t.Fatalf("List after Delete = %+v, want 2 entries", es)
	}

	// Safe for concurrent use: goroutines on their own entries (a bounded
	// number of rounds each) see only their own values.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			env := fmt.Sprintf("c%d", g)
			for i := range 5 {
				val := secret(fmt.Sprintf("%s-%d", env, i))
				tok := NewToken(bytes.Clone(val))
				err := c.Put(vb, env, tok, t1)
				tok.Wipe()
				if err != nil {
					errs <- fmt.Errorf("Put %s: %w", env, err)
					return
				}
				got, _, ok, err := c.Get(vb, env)
				if err != nil || ok != stores || (ok && !bytes.Equal(got.Reveal(), val)) {
					errs <- fmt.Errorf("%s round %d: Get = ok %v, err %v, right value %v", env, i, ok, err, bytes.Equal(got.Reveal(), val))
					return
				}
				got.Wipe()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// memCache is the in-memory fake Cache: the contract's reference.
type memCache struct {
	mu sync.Mutex
	m  map[[2]string]memEntry
}

type memEntry struct {
	b       []byte
	fetched time.Time
}

var _ Cache = (*memCache)(nil)

func (c *memCache) Get(vault, env string) (Token, time.Time, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[[2]string{vault, env}]
	if !ok {
		return Token{}, time.Time{}, false, nil
	}
	return NewToken(bytes.Clone(e.b)), e.fetched, true, nil
}

func (c *memCache) Put(vault, env string, t Token, fetched time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[2]string]memEntry)
	}
	c.m[[2]string{vault, env}] = memEntry{bytes.Clone(t.Reveal()), fetched}
	return nil
}

func (c *memCache) Delete(vault, env string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, [2]string{vault, env})
	return nil
}

func (c *memCache) List() ([]Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var es []Entry
	for k, e := range c.m {
		es = append(es, Entry{Vault: k[0], Env: k[1], Fetched: e.fetched})
	}
	sortEntries(es)
	return es, nil
}

func (*memCache) String() string { return "in-memory fake" }

func TestCacheContractFake(t *testing.T) { testCacheContract(t, &memCache{}, true) }

func TestCacheContractNone(t *testing.T) {
	c := NoCache("no keychain in this test")
	testCacheContract(t, c, false)
	if !strings.Contains(c.String(), "no keychain in this test") {
		t.Errorf("String = %q, want the reason", c.String())
	}
}
