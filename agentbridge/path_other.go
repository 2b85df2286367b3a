//go:build !linux && !darwin

package agentbridge

import (
	"os"
	"path/filepath"
	"strconv"
)

// onePasswordSocket is where 1Password keeps its agent socket on Linux; other
// systems have no 1Password agent, so this only names a path that will not
// answer.
const onePasswordSocket = ".1password/agent.sock"

// DefaultListenPath is /tmp/rssh-UID/bridge.sock on systems without a
// better per-user runtime directory. Peer credentials are not implemented
// on these systems (see peercred_other.go), so the bridge refuses every
// peer there anyway.
func DefaultListenPath() (string, error) {
	return filepath.Join(os.TempDir(), "rssh-"+strconv.Itoa(os.Getuid()), "bridge.sock"), nil
}
