// Package agentbridge is the agent bridge daemon behind `rssh --bridge`: it
// exposes the user's SSH agent (1Password's, or any) on its own unix socket
// to an allow-list of local UIDs — root, so the Nix daemon's ssh can use the
// user's keys — and forwards only what such a caller needs.
//
// It owns the listener and its socket file, the peers' kernel credentials,
// the policy (who may connect, which keys a peer sees and may sign with, for
// which servers' host keys), the agent wire protocol it speaks on both sides,
// the audit log (one slog line per decision) and the upstream connection,
// which it redials after the upstream agent restarts.
//
// It must not depend on sshproxy or on the CLI: cmd/rssh maps its flags onto
// Config and calls New and Serve. It must not forward anything that changes
// the upstream agent (add, remove, lock, unlock, unknown extensions), not
// even for the owner: a bridge socket is reachable by more than the owner,
// so it offers less than the agent behind it.
//
// Its own wire code replaces x/crypto's agent.ServeAgent on purpose: the
// bridge must see and audit each request raw (the session-bind extension,
// signature flags, the key blob as sent) and ServeAgent logs refusals to the
// standard logger rather than to the audit log.
package agentbridge
