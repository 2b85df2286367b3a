//go:build !unix

package envmap

import (
	"context"
	"os"
	"path/filepath"
)

// Without flock, concurrent cold-cache fetches each run op; nothing else
// changes.
func defaultLockDir() string { return filepath.Join(os.TempDir(), "rssh") }

func ensurePrivateDir(dir string) error { return os.MkdirAll(dir, 0o700) }

func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
