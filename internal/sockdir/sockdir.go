// Package sockdir checks a directory before a socket is created in it: the
// agent bridge's and a ControlMaster's sockets are trusted by whoever
// connects, so nobody else may be able to swap them.
package sockdir

import (
	"fmt"
	"os"
	"syscall"
)

// Check refuses a directory that another user could write to (unless
// sticky, as /tmp is) or that belongs to someone other than this user or
// root: either could replace the socket with their own. With followLink
// false a symlink in dir's place is refused too (it is not a directory).
func Check(dir string, followLink bool) error {
	stat := os.Lstat
	if followLink {
		stat = os.Stat
	}
	fi, err := stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("directory %s is writable by other users (mode %v)", dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := uint32(os.Getuid()); st.Uid != uid && st.Uid != 0 {
			return fmt.Errorf("directory %s belongs to uid %d, not to uid %d or root", dir, st.Uid, uid)
		}
	}
	return nil
}
