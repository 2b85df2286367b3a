//go:build !linux && !(darwin && cgo)

package envmap

import (
	"errors"
	"runtime"
)

// On other systems (and macOS built without cgo) there is no keychain
// support: op runs on every connection, and nothing is written anywhere.
func openKeychain() (Cache, error) {
	if runtime.GOOS == "darwin" {
		return nil, errors.New("this rssh was built without cgo, so it cannot use the macOS Keychain")
	}
	return nil, errors.New("no keychain support on " + runtime.GOOS)
}
