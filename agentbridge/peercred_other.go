//go:build !linux && !darwin

package agentbridge

import (
	"errors"
	"runtime"
)

// peerCredentials is not implemented here, so every peer is refused: a
// bridge that cannot tell who is calling must not answer anyone.
func peerCredentials(fd int) (peer, error) {
	return peer{}, errors.New("peer credentials are not implemented on " + runtime.GOOS)
}

func commandName(pid int) string { return "" }
