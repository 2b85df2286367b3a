// Package hostkeys reads OpenSSH known_hosts files and decides host-key trust
// the way OpenSSH 9.2 ssh does (hostfile.c, match.c, sshconnect.c
// check_host_key, sshconnect2.c order_hostkeyalgs), for the client's
// HostKeyCallback and its host-key algorithm preference.
//
// It owns parsing and matching known_hosts lines (patterns, negation,
// [host]:port, hashed names, @cert-authority, @revoked), the trust decision,
// appending a newly accepted key, and RevokedHostKeys files: OpenSSH key
// revocation lists (PROTOCOL.krl, krl.c) and plain key lists. It does not prompt, print warnings,
// read ssh_config or decide what StrictHostKeyChecking allows: the caller
// maps a Result to those.
//
// We do not use x/crypto/ssh/knownhosts (nor skeema/knownhosts on top of it):
// it fails a whole file on one unparseable line and on a missing file, where
// OpenSSH skips both.
//
// Where this package knowingly differs from OpenSSH, it is stricter:
//   - a key revoked under the port-less name is Revoked even when the lookup
//     was for "[host]:port" (OpenSSH only warns and goes on to the new-host
//     prompt);
//   - lines longer than maxLineLen are skipped and files larger than
//     maxFileSize are refused (OpenSSH has no limits);
//   - Append starts a new line when the file does not end in one (OpenSSH
//     glues the new entry onto the last line).
package hostkeys
