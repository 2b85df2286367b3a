package agentbridge

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for the Config fields left zero.
const (
	// DefaultMaxMessage is OpenSSH's own cap on an agent message
	// (AGENT_MAX_LEN in ssh-agent.c is 256 KiB).
	DefaultMaxMessage = 256 * 1024
	// DefaultMaxConns bounds the open connections. Go raises the soft
	// RLIMIT_NOFILE to the hard limit, and each connection costs at most two
	// descriptors (downstream and upstream).
	DefaultMaxConns = 2048
	// DefaultIdleTimeout closes a connection that sends no complete request
	// for this long. OpenSSH's ssh closes its agent connection after
	// authentication, so long-idle connections are leaks, not users.
	DefaultIdleTimeout = 10 * time.Minute

	// maxMessageLimit bounds Config.MaxMessage itself.
	maxMessageLimit = 16 << 20
	// maxUnixPath is the smallest sun_path among supported systems (macOS:
	// 104 bytes including the terminating NUL).
	maxUnixPath = 103
)

// DefaultAllowUIDs is what a nil Config.AllowUIDs means: root, the user the
// Nix daemon (and other system services) run ssh as.
var DefaultAllowUIDs = []uint32{0}

// Config is the bridge's configuration; each field maps to one
// `rssh --bridge` flag or is a limit with a safe default.
type Config struct {
	// Listen is the socket path (--listen). Empty means DefaultListenPath().
	Listen string
	// Upstream is the agent socket the bridge forwards to (--upstream). Empty
	// means DefaultUpstream(os.Getenv).
	Upstream string
	// AllowUIDs are the peers besides the owner that may connect
	// (--allow-uid, repeatable). nil means DefaultAllowUIDs (root); a
	// non-nil empty slice means the owner only.
	AllowUIDs []uint32
	// AllowKeys limits, for peers other than the owner, which keys are
	// listed and may sign (--allow-key SHA256:…, repeatable). Empty: all.
	AllowKeys []string
	// AllowHostKeys limits, for peers other than the owner, which servers a
	// signature may be for (--allow-host-key SHA256:…, repeatable): a sign
	// request needs a session-bind to one of these host keys on the same
	// connection, and must be the user-authentication request for that
	// bound session. The bridge verifies the bind's signature itself and
	// records it even when the upstream agent does not support binds
	// (1Password's answers failure), so this works with any agent. Empty:
	// no destination restriction.
	AllowHostKeys []string

	// Log receives the audit lines. nil means slog.Default().
	Log *slog.Logger
	// MaxConns bounds the open connections; more are closed at once. Zero
	// means DefaultMaxConns.
	MaxConns int
	// IdleTimeout is how long a connection may take to send its next
	// complete request. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxMessage caps the length of one agent message, either direction.
	// Zero means DefaultMaxMessage.
	MaxMessage int
}

// validate fills the defaults in a copy of c and checks it.
func (c Config) validate() (Config, error) {
	if c.Listen == "" {
		p, err := DefaultListenPath()
		if err != nil {
			return c, err
		}
		c.Listen = p
	}
	if c.Upstream == "" {
		c.Upstream = DefaultUpstream(os.Getenv)
		if c.Upstream == "" {
			return c, errors.New("no upstream agent: SSH_AUTH_SOCK is unset and the home directory is unknown")
		}
	}
	for _, p := range []struct{ flag, path string }{{"listen", c.Listen}, {"upstream", c.Upstream}} {
		if !filepath.IsAbs(p.path) {
			return c, fmt.Errorf("--%s %q: not an absolute path", p.flag, p.path)
		}
		if len(p.path) > maxUnixPath {
			return c, fmt.Errorf("--%s %q: longer than the %d bytes a unix socket path may have", p.flag, p.path, maxUnixPath)
		}
	}
	if filepath.Clean(c.Listen) == filepath.Clean(c.Upstream) {
		return c, fmt.Errorf("--listen and --upstream are the same socket %q", c.Listen)
	}
	if c.AllowUIDs == nil {
		c.AllowUIDs = DefaultAllowUIDs
	}
	for _, fp := range c.AllowKeys {
		if err := checkFingerprint(fp); err != nil {
			return c, fmt.Errorf("--allow-key %q: %w", fp, err)
		}
	}
	for _, fp := range c.AllowHostKeys {
		if err := checkFingerprint(fp); err != nil {
			return c, fmt.Errorf("--allow-host-key %q: %w", fp, err)
		}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	switch {
	case c.MaxConns < 0:
		return c, fmt.Errorf("max connections %d: must be positive", c.MaxConns)
	case c.MaxConns == 0:
		c.MaxConns = DefaultMaxConns
	}
	switch {
	case c.IdleTimeout < 0:
		return c, fmt.Errorf("idle timeout %v: must be positive", c.IdleTimeout)
	case c.IdleTimeout == 0:
		c.IdleTimeout = DefaultIdleTimeout
	}
	switch {
	case c.MaxMessage < 0 || c.MaxMessage > maxMessageLimit:
		return c, fmt.Errorf("max message %d: must be between 1 and %d bytes", c.MaxMessage, maxMessageLimit)
	case c.MaxMessage == 0:
		c.MaxMessage = DefaultMaxMessage
	case c.MaxMessage < 1024:
		// Smaller than any real sign request or identities answer.
		return c, fmt.Errorf("max message %d: must be at least 1024 bytes", c.MaxMessage)
	}
	return c, nil
}

// checkFingerprint accepts exactly OpenSSH's `SHA256:` form, as printed by
// `ssh-add -l` and `ssh-keygen -lf`: 43 characters of unpadded base64 of a
// 32-byte digest. Comparisons are then plain string equality.
func checkFingerprint(fp string) error {
	const hint = "want OpenSSH's SHA256:<43 base64 characters> form, as `ssh-add -l` or `ssh-keygen -lf KEY.pub` prints it"
	b64, ok := strings.CutPrefix(fp, "SHA256:")
	if !ok {
		if strings.HasPrefix(fp, "MD5:") || strings.Count(fp, ":") >= 15 {
			return fmt.Errorf("an MD5 fingerprint; %s", hint)
		}
		return errors.New(hint)
	}
	raw, err := base64.RawStdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != 32 {
		return errors.New("not a SHA256 digest; " + hint)
	}
	return nil
}

// DefaultUpstream is the agent the bridge forwards to when --upstream is not
// given: SSH_AUTH_SOCK if set, else 1Password's agent socket in the user's
// home (see onePasswordSocket for each system). getenv is os.Getenv outside
// tests.
func DefaultUpstream(getenv func(string) string) string {
	if s := getenv("SSH_AUTH_SOCK"); s != "" {
		return s
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		home = h
	}
	return filepath.Join(home, onePasswordSocket)
}
