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
// Audit lines are slog records with the message "audit" and these
// attributes: conn (a per-bridge connection number), uid, pid, cmd (the
// peer, from the kernel when it connected), op (connect, list, sign,
// session-bind, extension, add, remove, lock, …, close), decision (allowed
// or refused), reason, and where they apply key and host_key (OpenSSH
// SHA256: fingerprints; host_key is the connection's bound server), flags
// (the sign request's, passed on unchanged), result (what the upstream agent
// did with an allowed request), keys and hidden (a filtered list),
// forwarding (a session-bind's flag) and extension (a refused extension's
// name). Signatures, session-binds, filtered lists and refusals are logged
// at Info, an unreachable or misbehaving upstream at Warn, the rest at Debug.
// Each line is written (the handler has returned) before the reply to its
// request is sent, so a crash cannot lose the record of a signature a peer
// got; a signature whose line the handler fails to write is withheld and
// the peer gets a failure (logged at Error, if the handler still can).
//
// Its own wire code replaces x/crypto's agent.ServeAgent on purpose: the
// bridge must see and audit each request raw (the session-bind extension,
// signature flags, the key blob as sent) and ServeAgent logs refusals to the
// standard logger rather than to the audit log.
package agentbridge
