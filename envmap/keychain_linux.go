//go:build linux

package envmap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/keybase/go-keychain/secretservice"
)

// probeTimeout bounds how long a silent session bus can delay a connection:
// past it rssh goes on without a cache.
const probeTimeout = 3 * time.Second

// userBusPath is where a systemd user session puts its bus socket, which the
// D-Bus library finds on its own when DBUS_SESSION_BUS_ADDRESS is unset. A
// variable so tests can point it at nothing.
var userBusPath = func() string { return fmt.Sprintf("/run/user/%d/bus", os.Getuid()) }

// sessionBusReachable reports whether there is a session bus to talk to,
// without letting the D-Bus library autolaunch one: with no address it runs
// dbus-launch, which would leave a daemon behind.
func sessionBusReachable() error {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	if _, err := os.Stat(userBusPath()); err == nil {
		return nil
	}
	return errors.New("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)")
}

func openKeychain() (Cache, error) {
	if err := sessionBusReachable(); err != nil {
		return nil, err
	}
	// The library keeps its connection unexported and has no Close: a failed
	// probe leaves one idle connection for the life of the process.
	srv, err := secretservice.NewService()
	if err != nil {
		return nil, fmt.Errorf("no D-Bus session bus: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if err := srv.ServiceObj().CallWithContext(ctx, "org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
		return nil, fmt.Errorf("no Secret Service on the session bus: %w", err)
	}
	// Never prompt to unlock: a prompt would pop up mid-connection, or wait
	// 30 s for nobody over SSH. A locked keyring means no cache this time.
	v, err := srv.Obj(secretservice.DefaultCollection).GetProperty("org.freedesktop.Secret.Collection.Locked")
	if err != nil {
		return nil, fmt.Errorf("the Secret Service has no default collection: %w", err)
	}
	if locked, _ := v.Value().(bool); locked {
		return nil, errors.New("the Secret Service's default collection is locked")
	}
	// DH-AES, so the token does not cross the bus in the clear.
	srv.SetSessionOpenTimeout(probeTimeout)
	sess, err := srv.OpenSession(secretservice.AuthenticationDHAES)
	if err != nil {
		return nil, fmt.Errorf("opening a Secret Service session: %w", err)
	}
	return &secretServiceCache{srv: srv, sess: sess}, nil
}

// secretServiceCache stores each token as an item in the Secret Service's
// default collection, with the vault, environment and fetch time as
// attributes so that List needs no secret.
type secretServiceCache struct {
	// mu serialises calls: the library's prompt handling is not
	// goroutine-safe, and Put is delete-then-create.
	mu   sync.Mutex
	srv  *secretservice.SecretService
	sess *secretservice.Session
}

var _ Cache = (*secretServiceCache)(nil)

func (c *secretServiceCache) String() string { return "Secret Service (default collection)" }

func entryAttrs(vault, env string) secretservice.Attributes {
	return secretservice.Attributes{attrSchema: itemSchema, attrVault: vault, attrEnv: env}
}

func (c *secretServiceCache) Get(vault, env string) (Token, time.Time, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	items, err := c.srv.SearchCollection(secretservice.DefaultCollection, entryAttrs(vault, env))
	if err != nil || len(items) == 0 {
		return Token{}, time.Time{}, false, err
	}
	// Two processes racing without the resolver's lock can leave two items;
	// the newest wins.
	best, bestFetched := items[0], time.Time{}
	for i, it := range items {
		attrs, err := c.srv.GetAttributes(it)
		if err != nil {
			return Token{}, time.Time{}, false, err
		}
		f, _ := time.Parse(fetchedFmt, attrs[attrFetched])
		if i == 0 || f.After(bestFetched) {
			best, bestFetched = it, f
		}
	}
	b, err := c.srv.GetSecret(best, *c.sess)
	if err != nil {
		return Token{}, time.Time{}, false, err
	}
	if len(b) == 0 {
		// GetSecret returns nil, nil when DH decryption fails: a miss.
		return Token{}, time.Time{}, false, nil
	}
	return NewToken(b), bestFetched, true, nil
}

func (c *secretServiceCache) Put(vault, env string, t Token, fetched time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.deleteLocked(vault, env); err != nil {
		return err
	}
	// NewSecret pads and encrypts into buffers of its own; the plaintext
	// copy it pads is the library's and cannot be wiped from here.
	s, err := c.sess.NewSecret(t.Reveal())
	if err != nil {
		return err
	}
	attrs := entryAttrs(vault, env)
	attrs[attrFetched] = fetched.UTC().Format(fetchedFmt)
	props := secretservice.NewSecretProperties(itemLabel(vault, env), attrs)
	_, err = c.srv.CreateItem(secretservice.DefaultCollection, props, s, secretservice.ReplaceBehaviorReplace)
	return err
}

func (c *secretServiceCache) Delete(vault, env string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleteLocked(vault, env)
}

func (c *secretServiceCache) deleteLocked(vault, env string) error {
	items, err := c.srv.SearchCollection(secretservice.DefaultCollection, entryAttrs(vault, env))
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := c.srv.DeleteItem(it); err != nil {
			return err
		}
	}
	return nil
}

func (c *secretServiceCache) List() ([]Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	items, err := c.srv.SearchCollection(secretservice.DefaultCollection, secretservice.Attributes{attrSchema: itemSchema})
	if err != nil {
		return nil, err
	}
	var es []Entry
	for _, it := range items {
		attrs, err := c.srv.GetAttributes(it)
		if err != nil {
			return nil, err
		}
		f, _ := time.Parse(fetchedFmt, attrs[attrFetched])
		es = append(es, Entry{Vault: attrs[attrVault], Env: attrs[attrEnv], Fetched: f})
	}
	sortEntries(es)
	return es, nil
}
