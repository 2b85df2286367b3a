//go:build !linux && !darwin

package envmap

import (
	"errors"
	"runtime"
)

// On other systems there is no keychain support: op runs on every
// connection, and nothing is written anywhere.
func openKeychain() (Cache, error) {
	return nil, errors.New("no keychain support on " + runtime.GOOS)
}
