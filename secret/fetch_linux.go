package secret

import "syscall"

// statfsType is the filesystem type (statfs f_type) of path.
func statfsType(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil
}
