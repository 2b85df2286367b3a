//go:build darwin

package envmap

import (
	"os"
	"testing"
)

// The macOS Keychain cache meets the Cache contract. It writes to the
// user's default keychain (entries under unique test vault names, removed
// at the end), so it runs only when asked: RSSH_TEST_KEYCHAIN=1 go test
// -run CacheContract ./envmap/ on a Mac with an unlocked login keychain.
// Elsewhere CI only compiles and vets this file (GOOS=darwin go vet).
func TestCacheContractKeychain(t *testing.T) {
	if os.Getenv("RSSH_TEST_KEYCHAIN") != "1" {
		t.Skip("writes to the login keychain: set RSSH_TEST_KEYCHAIN=1 to run")
	}
	c, err := openKeychain()
	if err != nil {
		t.Fatalf("openKeychain: %v", err)
	}
	if _, ok := c.(*macKeychain); !ok {
		t.Fatalf("openKeychain = %v, want the macOS Keychain cache", c)
	}
	testCacheContract(t, c, true)
	if oc := OpenCache(nil); oc.String() != c.String() {
		t.Errorf("OpenCache = %v, want %v", oc, c)
	}
}
