package sshproxy

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/hostkeys"
)

// HostKeyError is a host key rssh refused. It is returned before any
// authentication, so nothing — no signature, no token — has reached the host.
type HostKeyError struct {
	Msg  string
	Hint string
}

func (e *HostKeyError) Error() string { return e.Msg }

// hostKeyName is the name known_hosts is searched under, as OpenSSH does:
// HostKeyAlias as written (lowercased, never with a port), else the hostname,
// which hostkeys turns into [host]:port for a non-default port.
func hostKeyName(cfg *config.Config) (string, int) {
	if cfg.HostKeyAlias != "" {
		return strings.ToLower(cfg.HostKeyAlias), 0
	}
	return strings.ToLower(cfg.Hostname), cfg.Port
}

func displayName(name string, port int) string {
	if port == 0 || port == 22 {
		return name
	}
	return fmt.Sprintf("[%s]:%d", name, port)
}

// hostKeyPolicy loads known_hosts for cfg and returns the callback that
// enforces StrictHostKeyChecking, plus the host-key algorithms to offer,
// those known for this host first. Without that ordering x/crypto picks its
// own preferred algorithm and a host known only by, say, its ECDSA key looks
// like a changed key.
//
// upd, when not nil, learns whether the first host key was trusted enough
// for UpdateHostKeys.
func (cl *Client) hostKeyPolicy(cfg *config.Config, upd *hostKeyUpdate) (ssh.HostKeyCallback, []string, error) {
	files := append(slices.Clone(cfg.UserKnownHostsFiles), cfg.GlobalKnownHostsFiles...)
	db, err := hostkeys.Load(files...)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range db.Skipped() {
		cl.Log.Debug("known_hosts line skipped", "where", s)
	}
	name, port := hostKeyName(cfg)
	// Offer exactly the configured (ssh -G) list, in its order, less what
	// x/crypto cannot verify (sk- host keys); ssh-rsa and ssh-dss only when
	// listed, as OpenSSH's default list leaves them out too.
	// (A Config made by hand, with no list, gets x/crypto's.)
	algos := ssh.SupportedAlgorithms().HostKeys
	if len(cfg.HostKeyAlgorithms) > 0 {
		algos = known(cfg.HostKeyAlgorithms, algos, ssh.InsecureAlgorithms().HostKeys)
	}
	if len(algos) == 0 {
		return nil, nil, fmt.Errorf("HostKeyAlgorithms %s: rssh supports none of these", strings.Join(cfg.HostKeyAlgorithms, ","))
	}
	// Then, as OpenSSH's order_hostkeyalgs, known_hosts (and
	// KnownHostsCommand, invoked as ORDER) moves the host's known key types
	// to the front, unless HostKeyAlgorithms is a list of the user's own.
	if cfg.OrderHostKeyAlgorithms {
		// %H is the name without the port here, as in order_hostkeyalgs.
		odb, err := cl.knownHostsCommand(db, cfg, "ORDER", name, nil)
		if err != nil {
			return nil, nil, err
		}
		if known := odb.HostKeyAlgorithms(name, port, algos); len(known) > 0 {
			algos = known
		}
	}
	cb := func(_ string, _ net.Addr, key ssh.PublicKey) error {
		shown := displayName(name, port)
		db, err := cl.knownHostsCommand(db, cfg, "HOSTNAME", shown, key)
		if err != nil {
			return err
		}
		res := db.Check(name, port, key)
		switch res.Status {
		case hostkeys.Known:
			cl.Log.Debug("host key verified", "host", shown, "key", fingerprint(key))
			upd.noteHostKey(upd.knownInUserFile(res))
			return nil
		case hostkeys.Revoked:
			return &HostKeyError{
				Msg: fmt.Sprintf("host key %s %s for %s is marked as revoked in known_hosts: refusing to connect",
					keyTypeName(key), fingerprint(key), shown),
			}
		case hostkeys.Invalid:
			return &HostKeyError{
				Msg: fmt.Sprintf("host certificate offered by %s is invalid: %v: refusing to connect", shown, res.CertErr),
			}
		case hostkeys.Changed:
			var where []string
			for _, m := range res.Want {
				where = append(where, m.String())
			}
			e := &HostKeyError{
				Msg: fmt.Sprintf("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for %s: it offered %s %s, known_hosts has %s; someone could be eavesdropping (a man-in-the-middle attack), or the host key was replaced: refusing to connect",
					shown, keyTypeName(key), fingerprint(key), strings.Join(where, ", ")),
			}
			// The offending line's file, which may be a global one (or a
			// KnownHostsCommand's output, which no ssh-keygen -R can edit).
			if res.Found != nil && !strings.HasPrefix(res.Found.File, "KnownHostsCommand-") {
				e.Hint = fmt.Sprintf("if the change is expected, remove the old key with: ssh-keygen -R '%s' -f %s", shown, res.Found.File)
			}
			return e
		}
		// Unknown host. With no user known_hosts file (UserKnownHostsFile
		// none) OpenSSH can record nothing and so accepts nothing new,
		// whatever StrictHostKeyChecking says (sshconnect.c: readonly).
		if len(cfg.UserKnownHostsFiles) == 0 {
			return &HostKeyError{
				Msg: fmt.Sprintf("no %s host key is known for %s and UserKnownHostsFile is none: host key verification failed",
					keyTypeName(key), shown),
				Hint: fmt.Sprintf("check the key's fingerprint %s out of band, then add it to a known_hosts file rssh reads", fingerprint(key)),
			}
		}
		mode := cfg.StrictHostKeyChecking
		if mode == "ask" {
			if cfg.BatchMode || cl.Prompt == nil {
				// ssh cannot ask: its confirm() fails quietly and it says only
				// that verification failed (strict checking was not asked for).
				return &HostKeyError{
					Msg: "host key verification failed",
					Hint: fmt.Sprintf("%s offered %s key %s, which no known_hosts file has: check it out of band, then add it to %s, or connect once with -o StrictHostKeyChecking=accept-new",
						shown, keyTypeName(key), fingerprint(key), cfg.UserKnownHostsFiles[0]),
				}
			} else {
				answer, err := cl.Prompt.Confirm(fmt.Sprintf(
					"The authenticity of host '%s' can't be established.\n%s key fingerprint is %s.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? ",
					shown, keyTypeName(key), fingerprint(key)))
				if err != nil {
					return &HostKeyError{Msg: "host key verification failed: " + err.Error()}
				}
				answer = strings.TrimSpace(answer)
				switch {
				case strings.EqualFold(answer, "yes"), answer == fingerprint(key):
					mode = "accept-new"
					upd.noteHostKey(true) // explicitly confirmed
				default:
					return &HostKeyError{Msg: "host key verification failed"}
				}
			}
		}
		if mode == "yes" {
			return &HostKeyError{
				Msg: fmt.Sprintf("no %s host key is known for %s and strict checking is requested: host key verification failed",
					keyTypeName(key), shown),
				Hint: fmt.Sprintf("check the key's fingerprint %s out of band, then add it to %s, or connect once with -o StrictHostKeyChecking=accept-new",
					fingerprint(key), cfg.UserKnownHostsFiles[0]),
			}
		}
		upd.noteHostKey(false) // accepted as new without asking: not trusted to update
		// accept-new and no both record the key, as OpenSSH does.
		if cfg.UserKnownHostsFiles[0] == "/dev/null" {
			return nil
		}
		if err := hostkeys.Append(cfg.UserKnownHostsFiles[0], name, port, key, cfg.HashKnownHosts); err != nil {
			cl.Log.Warn(fmt.Sprintf("Failed to add the host to the list of known hosts (%s): %v", cfg.UserKnownHostsFiles[0], err))
			return nil
		}
		cl.Log.Warn(fmt.Sprintf("Warning: Permanently added '%s' (%s) to the list of known hosts.", shown, keyTypeName(key)))
		return nil
	}
	return cl.certChecks(cfg, db, name, port, cb), algos, nil
}

// certChecks runs, before cb, what OpenSSH's verify_host_key does first:
// RevokedHostKeys refuses a revoked key (or a certificate whose serial or
// CA is revoked) whatever known_hosts and StrictHostKeyChecking say; and a
// host certificate from a trusted CA that is not valid for this host is
// reported ("Certificate invalid: expired") before cb goes on with its
// plain key.
func (cl *Client) certChecks(cfg *config.Config, db *hostkeys.DB, name string, port int, cb ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if err := checkRevokedFile(cfg.RevokedHostKeys, key); err != nil {
			return err
		}
		if _, ok := key.(*ssh.Certificate); ok {
			res := db.Check(name, port, key)
			var invalid *hostkeys.CertInvalidError
			if res.Status != hostkeys.Known && errors.As(res.CertErr, &invalid) {
				cl.Log.Error("rssh: host " + invalid.Error())
			}
		}
		return cb(hostname, remote, key)
	}
}

// checkRevokedFile refuses a host key that RevokedHostKeys revokes, before
// known_hosts is consulted and whatever StrictHostKeyChecking says, as
// OpenSSH's verify_host_key does; a file that cannot be read or parsed
// refuses the host too.
func checkRevokedFile(path string, key ssh.PublicKey) error {
	if path == "" {
		return nil
	}
	fp := ssh.FingerprintSHA256(key)
	if c, ok := key.(*ssh.Certificate); ok {
		fp = ssh.FingerprintSHA256(c.Key) // OpenSSH fingerprints a certificate's key
	}
	rk, err := hostkeys.LoadRevoked(path)
	revoked := false
	if err == nil {
		revoked, err = rk.Check(key)
	}
	if err != nil {
		return &HostKeyError{
			Msg: fmt.Sprintf("cannot check host key %s %s: %v: host key verification failed",
				keyTypeName(key), fp, err),
			Hint: "fix or remove RevokedHostKeys " + path,
		}
	}
	if revoked {
		return &HostKeyError{
			Msg: fmt.Sprintf("host key %s %s revoked by file %s: host key verification failed", keyTypeName(key), fp, path),
		}
	}
	return nil
}

func fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// keyTypeName is OpenSSH's short name for a key type, as in its messages.
func keyTypeName(k ssh.PublicKey) string {
	t := k.Type()
	if c, ok := k.(*ssh.Certificate); ok {
		t = c.Key.Type()
	}
	switch {
	case strings.HasPrefix(t, "ssh-ed25519"), strings.HasPrefix(t, "sk-ssh-ed25519"):
		return "ED25519"
	case strings.HasPrefix(t, "ecdsa"), strings.HasPrefix(t, "sk-ecdsa"):
		return "ECDSA"
	case strings.HasPrefix(t, "ssh-rsa"):
		return "RSA"
	case strings.HasPrefix(t, "ssh-dss"):
		return "DSA"
	}
	return strings.ToUpper(t)
}

// isHostKeyError reports whether err is (or wraps) a host-key refusal.
func isHostKeyError(err error) bool {
	var h *HostKeyError
	return errors.As(err, &h)
}

// HintText is the fix, printed as "rssh: hint: …".
func (e *HostKeyError) HintText() string { return e.Hint }
