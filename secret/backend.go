// Package secret is the remote and host side of rssh: it resolves op://
// references with the Service Account token that rssh pushed into the
// session (or that systemd handed a service), for `rssh secret read`, `run`,
// `inject`, `fetch` and the shell-init wrappers, without the op CLI.
package secret

import "context"

// Backend resolves op:// references. Implementations: the op CLI (the token
// in op's environment, never argv), the 1Password Go SDK (secret/sdk), and
// the per-session resolver's client (secret/resolverd).
type Backend interface {
	// Name is the backend as RSSH_SECRET_BACKEND and --backend spell it.
	Name() string
	// ResolveAll resolves refs in one batch: out[i] is the value of
	// refs[i]. An error names the reference(s) that failed, never a value.
	ResolveAll(ctx context.Context, refs []string) ([][]byte, error)
}
