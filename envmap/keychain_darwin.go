//go:build darwin

package envmap

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The macOS Keychain cache: one generic password per (vault, env) in the
// user's default keychain. The account is "<vault>/<env>" (a vault name has
// no '/', see validVault, so the split is unambiguous) and the fetch time is
// in the comment, an attribute, so List reads no secret.
//
// It calls Security.framework's SecItemAdd, SecItemCopyMatching and
// SecItemDelete in-process, through purego (security_darwin.go), rather than
// through cgo or /usr/bin/security:
//
//   - cgo would make the macOS binary unbuildable from Linux, so the code the
//     Mac user relies on would never be compiled by CI (it was not, before);
//   - /usr/bin/security takes the password in argv (add-generic-password -w)
//     unless driven through `security -i` on stdin, and even then it cannot
//     list one service's items with their attributes (only dump-keychain,
//     every item of the keychain, as text to parse), so List and
//     `rssh --token list` would need a second, fragile path. In-process there
//     is no child, no argv and no parsing at all.
//
// The token travels Go []byte → CFData → securityd; the CFData copies (ours
// and the framework's) are freed unwiped, as the D-Bus library's are on Linux.
//
// No test runs this on Linux; keychain_darwin_test.go holds it to the Cache
// contract on a Mac. CI compiles and vets it for darwin/arm64 and amd64.
const keychainService = "rssh: 1Password Service Account token"

func openKeychain() (Cache, error) {
	sec, err := loadSecurity()
	if err != nil {
		return nil, fmt.Errorf("the macOS Keychain is not usable: %w", err)
	}
	// Probe with an attribute-only query: it reads no secret, and fails with
	// errSecInteractionNotAllowed / errSecNoSuchKeychain when there is no
	// usable keychain (a locked one over SSH, say). No item yet is fine.
	q := sec.query(map[uintptr]uintptr{
		sec.kSecMatchLimit:       sec.kSecMatchLimitOne,
		sec.kSecReturnAttributes: sec.kCFBooleanTrue,
	}, "")
	defer sec.release(q)
	var res uintptr
	st := sec.SecItemCopyMatching(q, &res)
	sec.release(res)
	if st != errSecSuccess && st != errSecItemNotFound {
		return nil, fmt.Errorf("the macOS Keychain is not usable: %w", sec.err(st))
	}
	return &macKeychain{sec: sec}, nil
}

type macKeychain struct {
	mu  sync.Mutex // Put is delete-then-add
	sec *security
}

var _ Cache = (*macKeychain)(nil)

func (*macKeychain) String() string { return "macOS Keychain" }

func macAccount(vault, env string) string { return vault + "/" + env }

func (k *macKeychain) Get(vault, env string) (Token, time.Time, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.sec
	q := s.query(map[uintptr]uintptr{
		s.kSecMatchLimit:       s.kSecMatchLimitOne,
		s.kSecReturnAttributes: s.kCFBooleanTrue,
		s.kSecReturnData:       s.kCFBooleanTrue,
	}, macAccount(vault, env))
	defer s.release(q)
	var res uintptr
	st := s.SecItemCopyMatching(q, &res)
	defer s.release(res)
	switch {
	case st == errSecItemNotFound:
		return Token{}, time.Time{}, false, nil
	case st != errSecSuccess:
		return Token{}, time.Time{}, false, fmt.Errorf("reading the keychain item: %w", s.err(st))
	case res == 0 || s.CFGetTypeID(res) != s.dictionaryType:
		return Token{}, time.Time{}, false, errors.New("reading the keychain item: unexpected reply")
	}
	b := s.goBytes(s.CFDictionaryGetValue(res, s.kSecValueData))
	if len(b) == 0 {
		return Token{}, time.Time{}, false, nil
	}
	fetched, _ := time.Parse(fetchedFmt, s.goString(s.CFDictionaryGetValue(res, s.kSecAttrComment)))
	return NewToken(b), fetched, true, nil
}

func (k *macKeychain) Put(vault, env string, t Token, fetched time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.deleteLocked(vault, env); err != nil {
		return err
	}
	s := k.sec
	data := s.data(t.Reveal())
	defer s.release(data)
	label := s.cfString(itemLabel(vault, env))
	defer s.release(label)
	comment := s.cfString(fetched.UTC().Format(fetchedFmt))
	defer s.release(comment)
	q := s.query(map[uintptr]uintptr{
		s.kSecAttrLabel:   label,
		s.kSecAttrComment: comment,
		s.kSecValueData:   data,
	}, macAccount(vault, env))
	defer s.release(q)
	if st := s.SecItemAdd(q, nil); st != errSecSuccess {
		return fmt.Errorf("adding the keychain item: %w", s.err(st))
	}
	return nil
}

func (k *macKeychain) Delete(vault, env string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.deleteLocked(vault, env)
}

func (k *macKeychain) deleteLocked(vault, env string) error {
	s := k.sec
	// Without a match limit SecItemDelete removes every match: a racing
	// process may have left two.
	q := s.query(nil, macAccount(vault, env))
	defer s.release(q)
	if st := s.SecItemDelete(q); st != errSecSuccess && st != errSecItemNotFound {
		return fmt.Errorf("deleting the keychain item: %w", s.err(st))
	}
	return nil
}

func (k *macKeychain) List() ([]Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.sec
	q := s.query(map[uintptr]uintptr{
		s.kSecMatchLimit:       s.kSecMatchLimitAll,
		s.kSecReturnAttributes: s.kCFBooleanTrue,
	}, "")
	defer s.release(q)
	var res uintptr
	st := s.SecItemCopyMatching(q, &res)
	defer s.release(res)
	switch {
	case st == errSecItemNotFound:
		return nil, nil
	case st != errSecSuccess:
		return nil, fmt.Errorf("listing the keychain items: %w", s.err(st))
	case res == 0 || s.CFGetTypeID(res) != s.arrayType:
		return nil, errors.New("listing the keychain items: unexpected reply")
	}
	var es []Entry
	for i := range s.CFArrayGetCount(res) {
		it := s.CFArrayGetValueAtIndex(res, i)
		if it == 0 || s.CFGetTypeID(it) != s.dictionaryType {
			continue
		}
		acct := s.goString(s.CFDictionaryGetValue(it, s.kSecAttrAccount))
		j := strings.LastIndexByte(acct, '/')
		if j < 0 {
			continue
		}
		fetched, _ := time.Parse(fetchedFmt, s.goString(s.CFDictionaryGetValue(it, s.kSecAttrComment)))
		es = append(es, Entry{Vault: acct[:j], Env: acct[j+1:], Fetched: fetched})
	}
	sortEntries(es)
	return es, nil
}
