//go:build darwin && cgo

package envmap

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keybase/go-keychain"
)

// The macOS Keychain cache: one generic password per (vault, env) in the
// user's default keychain. The account is "<vault>/<env>" (an environment
// name has no '/', so the split is unambiguous) and the fetch time is in the
// comment, an attribute, so List reads no secret.
//
// This file was written against go-keychain v0.0.1's API but could not be
// compiled where rssh is developed (no macOS SDK for cgo); the Linux Secret
// Service cache is the tested one.
const keychainService = "rssh: 1Password Service Account token"

func openKeychain() (Cache, error) {
	// Probe with an attribute-only query: it needs no unlock prompt, and
	// fails with errSecInteractionNotAllowed / errSecNoSuchKeychain when
	// there is no usable keychain (a locked one over SSH, say).
	q := keychain.NewItem()
	q.SetSecClass(keychain.SecClassGenericPassword)
	q.SetService(keychainService)
	q.SetMatchLimit(keychain.MatchLimitOne)
	q.SetReturnAttributes(true)
	if _, err := keychain.QueryItem(q); err != nil {
		return nil, fmt.Errorf("the macOS Keychain is not usable: %w", err)
	}
	return &macKeychain{}, nil
}

type macKeychain struct{ mu sync.Mutex }

var _ Cache = (*macKeychain)(nil)

func (*macKeychain) String() string { return "macOS Keychain" }

func macAccount(vault, env string) string { return vault + "/" + env }

func (k *macKeychain) Get(vault, env string) (Token, time.Time, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := keychain.NewItem()
	q.SetSecClass(keychain.SecClassGenericPassword)
	q.SetService(keychainService)
	q.SetAccount(macAccount(vault, env))
	q.SetMatchLimit(keychain.MatchLimitOne)
	q.SetReturnAttributes(true)
	q.SetReturnData(true)
	rs, err := keychain.QueryItem(q)
	if err != nil || len(rs) == 0 || len(rs[0].Data) == 0 {
		return Token{}, time.Time{}, false, err
	}
	fetched, _ := time.Parse(fetchedFmt, rs[0].Comment)
	return NewToken(rs[0].Data), fetched, true, nil
}

func (k *macKeychain) Put(vault, env string, t Token, fetched time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.deleteLocked(vault, env); err != nil {
		return err
	}
	it := keychain.NewGenericPassword(keychainService, macAccount(vault, env), itemLabel(vault, env), t.Reveal(), "")
	it.SetComment(fetched.UTC().Format(fetchedFmt))
	return keychain.AddItem(it)
}

func (k *macKeychain) Delete(vault, env string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.deleteLocked(vault, env)
}

func (k *macKeychain) deleteLocked(vault, env string) error {
	err := keychain.DeleteGenericPasswordItem(keychainService, macAccount(vault, env))
	if errors.Is(err, keychain.ErrorItemNotFound) {
		return nil
	}
	return err
}

func (k *macKeychain) List() ([]Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := keychain.NewItem()
	q.SetSecClass(keychain.SecClassGenericPassword)
	q.SetService(keychainService)
	q.SetMatchLimit(keychain.MatchLimitAll)
	q.SetReturnAttributes(true)
	rs, err := keychain.QueryItem(q)
	if err != nil {
		return nil, err
	}
	var es []Entry
	for _, r := range rs {
		i := strings.LastIndexByte(r.Account, '/')
		if i < 0 {
			continue
		}
		fetched, _ := time.Parse(fetchedFmt, r.Comment)
		es = append(es, Entry{Vault: r.Account[:i], Env: r.Account[i+1:], Fetched: fetched})
	}
	sortEntries(es)
	return es, nil
}
