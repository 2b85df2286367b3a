//go:build linux

package envmap

import "testing"

// The Secret Service cache (gnome-keyring on a private D-Bus) meets the
// Cache contract.
func TestCacheContractSecretService(t *testing.T) {
	s := newSandbox(t)
	startKeyring(t, s)
	c := OpenCache(nil)
	if _, ok := c.(*secretServiceCache); !ok {
		t.Fatalf("OpenCache with a Secret Service up = %v, want the Secret Service cache", c)
	}
	testCacheContract(t, c, true)
}
