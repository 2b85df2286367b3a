//go:build unix

package config

import (
	"io/fs"
	"os"
	"syscall"
)

// checkOwnerPerm refuses a file OpenSSH would: owned by someone other than
// root or the user, or writable by group or others.
func checkOwnerPerm(path string, st fs.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if (sys.Uid != 0 && int(sys.Uid) != os.Getuid()) || st.Mode().Perm()&0o022 != 0 {
		return errorf(Pos{File: path}, "bad owner or permissions")
	}
	return nil
}
