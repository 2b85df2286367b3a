package agentbridge

import (
	"os"
	"path/filepath"
	"strconv"
)

// onePasswordSocket is 1Password's agent socket relative to the home
// directory on Linux.
const onePasswordSocket = ".1password/agent.sock"

// DefaultListenPath is where the bridge listens when --listen is not given.
//
// On Linux it is $XDG_RUNTIME_DIR/rssh/bridge.sock (/run/user/UID, made by
// systemd-logind for the user, mode 0700: only the user and root reach it,
// which is the default allow-list), else /tmp/rssh-UID/bridge.sock. A peer
// UID other than root that --allow-uid lets in needs a --listen path it
// can reach; the socket itself is mode 0666, because the kernel-credential
// check on every connection is the gate, not the file mode.
func DefaultListenPath() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "rssh", "bridge.sock"), nil
	}
	return filepath.Join(os.TempDir(), "rssh-"+strconv.Itoa(os.Getuid()), "bridge.sock"), nil
}
