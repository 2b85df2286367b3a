//go:build !linux && !darwin

package mux

import "errors"

// peerUID: no peer credentials here, so every peer is refused.
func peerUID(fd int) (uint32, error) {
	return 0, errors.New("peer credentials are not supported on this platform")
}
