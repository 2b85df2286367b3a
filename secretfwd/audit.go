package secretfwd

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Audit records every answer and refusal: host, remote user, reference,
// decision and reason — never a value. Lines go to a file (always) and to
// a logger (rssh's stderr, shown at -v).
type Audit struct {
	mu  sync.Mutex
	w   io.Writer
	log *slog.Logger
	now func() time.Time
}

// DefaultAuditPath is $XDG_STATE_HOME/rssh/audit.log, or
// ~/.local/state/rssh/audit.log.
func DefaultAuditPath(getenv func(string) string) (string, error) {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "rssh", "audit.log"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("audit log: no home directory: %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".local", "state", "rssh", "audit.log"), nil
}

// OpenAudit appends to the file at path (created 0600, its directory
// 0700) and copies each line to log at Debug (rssh -v).
func OpenAudit(path string, log *slog.Logger) (*Audit, io.Closer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	// An existing file keeps its owner's choices, but never readable by others.
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		f.Chmod(st.Mode().Perm() &^ 0o077)
	}
	return NewAudit(f, log), f, nil
}

// NewAudit writes lines to w and to log; either may be nil.
func NewAudit(w io.Writer, log *slog.Logger) *Audit {
	return &Audit{w: w, log: log, now: time.Now}
}

// Record writes one line. A nil Audit records nothing.
func (a *Audit) Record(host, user, ref, decision, reason string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.w != nil {
		line := fmt.Sprintf("%s host=%s user=%s ref=%s decision=%s reason=%s\n",
			a.now().UTC().Format(time.RFC3339), quoteField(host), quoteField(user), quoteField(ref), decision, quoteField(reason))
		io.WriteString(a.w, line)
	}
	if a.log != nil {
		a.log.Debug("secret forwarding", "host", host, "user", user, "ref", ref, "decision", decision, "reason", reason)
	}
}

// quoteField keeps a field on one line and unambiguous: plain words bare,
// anything else Go-quoted.
func quoteField(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == '\\' || r > '~' {
			return strconv.Quote(s)
		}
	}
	return s
}
