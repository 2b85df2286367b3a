package agentbridge

import (
	"fmt"
	"os"
	"path/filepath"
)

// onePasswordSocket is 1Password's agent socket relative to the home
// directory on macOS.
const onePasswordSocket = "Library/Group Containers/2BUA8C4S2C.com.1password/t/agent.sock"

// DefaultListenPath is where the bridge listens when --listen is not given.
//
// On macOS it is ~/Library/Application Support/rssh/bridge.sock: the home
// directory is the user's own, survives reboots (unlike $TMPDIR, which is a
// per-user /var/folders path that launchd daemons running as root do not
// know), and root reaches it whatever its modes. The path has a space; the
// Nix daemon's SSH_AUTH_SOCK takes it verbatim. A peer UID other than root
// that --allow-uid lets in needs a --listen path it can reach; the socket
// itself is mode 0666, because the kernel-credential check on every
// connection is the gate, not the file mode.
func DefaultListenPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("default listen path: %w", err)
	}
	return filepath.Join(home, "Library", "Application Support", "rssh", "bridge.sock"), nil
}
