package resolverd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rssh/rssh/envmap"
)

// maxSocketPath is sun_path's 108 bytes less the NUL; maxSocketName is the
// longest socketName ("r-", 24 hex, "-", a pid, ".sock").
const (
	maxSocketPath = 107
	maxSocketName = 2 + 24 + 1 + 10 + 5
)

// Dir is the private directory for this user's resolver sockets:
// $XDG_RUNTIME_DIR/rssh when that is usable, else /tmp/rssh-UID. It is
// made 0700 if missing, and refused unless it is a real directory (not a
// link) owned by this user with no group or other access.
func Dir(getenv func(string) string) (string, error) {
	uid := os.Geteuid()
	if x := getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		if err := checkDir(x, uid, false); err == nil {
			d := filepath.Join(x, "rssh")
			if len(d)+1+maxSocketName <= maxSocketPath && ensureDir(d, uid) == nil {
				return d, nil
			}
		}
	}
	d := filepath.Join(os.TempDir(), "rssh-"+strconv.Itoa(uid))
	if err := ensureDir(d, uid); err != nil {
		return "", err
	}
	return d, nil
}

func ensureDir(d string, uid int) error {
	if err := os.Mkdir(d, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("resolver directory %s: %w", d, err)
	}
	return checkDir(d, uid, true)
}

// checkDir refuses a directory someone else could have made or may enter.
func checkDir(d string, uid int, strict bool) error {
	st, err := os.Lstat(d)
	if err != nil {
		return fmt.Errorf("resolver directory %s: %w", d, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !st.IsDir():
		return fmt.Errorf("resolver directory %s: not a directory", d)
	case !ok || int(sys.Uid) != uid:
		return fmt.Errorf("resolver directory %s: owned by another user", d)
	case strict && st.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("resolver directory %s: mode %04o, want 0700", d, st.Mode().Perm())
	}
	return nil
}

// socketName is the daemon's socket for this token, backend and login
// session: a hash of the token (so a different token never reaches this
// daemon), the backend, and the session ID (so each session has its own,
// which dies with it).
func socketName(tok envmap.Token, backend string, sid int) string {
	h := sha256.New()
	h.Write([]byte("rssh-resolverd-socket-v1\x00" + backend + "\x00"))
	h.Write(tok.Reveal())
	return "r-" + hex.EncodeToString(h.Sum(nil)[:12]) + "-" + strconv.Itoa(sid) + ".sock"
}

// authFor is what a client proves it holds the daemon's token with: a
// hash of it, under another label than the socket name's.
func authFor(tok envmap.Token) [authLen]byte {
	h := sha256.New()
	h.Write([]byte("rssh-resolverd-auth-v1\x00"))
	h.Write(tok.Reveal())
	var a [authLen]byte
	copy(a[:], h.Sum(nil))
	return a
}
