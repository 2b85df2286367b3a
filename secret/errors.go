package secret

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rssh/rssh/envmap"
)

// Kinds of resolution failure, for errors.Is. fetch retries every failure
// but ErrNotFound, ErrAuth, ErrNoBackend and a bad reference: an op failure
// rssh does not recognise may well be the network at boot.
var (
	ErrNotFound    = errors.New("not found")          // no such vault, item, section or field
	ErrAuth        = errors.New("not authorized")     // the token is invalid, revoked or lacks access
	ErrRateLimited = errors.New("rate limited")       // 1Password asks to wait (Error.RetryIn)
	ErrTransient   = errors.New("temporary failure")  // network, timeouts, 5xx: worth a retry
	ErrBackend     = errors.New("backend failed")     // anything else the backend said
	ErrNoBackend   = errors.New("backend not usable") // op not installed, SDK not built in
)

// Error is a failed resolution. Msg names the reference(s) and says what
// the backend said; it never holds a value.
type Error struct {
	Kind    error    // one of the Err* kinds above
	Refs    []string // the references that failed, when known
	Msg     string
	Hint    string
	RetryIn time.Duration // how long 1Password asked to wait, when it said
}

func (e *Error) Error() string        { return e.Msg }
func (e *Error) Is(target error) bool { return target == e.Kind }
func (e *Error) Unwrap() error        { return e.Kind }

// HintText is the fix cmd/rssh prints on its hint line.
func (e *Error) HintText() string { return e.Hint }

// Retryable reports whether err is worth another attempt later.
func Retryable(err error) bool {
	return errors.Is(err, ErrTransient) || errors.Is(err, ErrRateLimited)
}

// joinErrors makes one Error of several per-reference failures: the kind
// of the first, every reference and message on one line.
func joinErrors(errs []*Error) *Error {
	if len(errs) == 1 {
		return errs[0]
	}
	out := &Error{Kind: errs[0].Kind, Hint: errs[0].Hint}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		out.Refs = append(out.Refs, e.Refs...)
		msgs[i] = e.Msg
		if e.RetryIn > out.RetryIn {
			out.RetryIn = e.RetryIn
		}
	}
	out.Msg = fmt.Sprintf("%d references failed: %s", len(errs), strings.Join(msgs, "; "))
	return out
}

// op prefixes its errors with "[ERROR] 2023/06/26 11:55:32 ".
var opErrPrefix = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\[ERROR\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d `) })

// opMessage is op's last non-empty stderr line without its prefix or
// final period, with control characters dropped and its length capped.
func opMessage(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(opErrPrefix().ReplaceAllString(strings.TrimSpace(lines[i]), ""))
		if l == "" {
			continue
		}
		l = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, l)
		if len(l) > 300 {
			l = l[:300] + "…"
		}
		return strings.TrimRight(l, ". ")
	}
	return ""
}

// classifyOp turns op's failure into an Error of the right kind. what
// names the reference(s) for the message.
func classifyOp(what string, refs []string, stderr string, fallback error) *Error {
	msg := opMessage(stderr)
	if msg == "" && fallback != nil {
		msg = fallback.Error()
	}
	low := strings.ToLower(msg)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(low, s) {
				return true
			}
		}
		return false
	}
	e := &Error{Refs: refs}
	switch {
	case has("(429)", "too many requests", "rate limit"):
		e.Kind = ErrRateLimited
		e.RetryIn = envmap.RetryAfter(msg)
		e.Msg = fmt.Sprintf("%s: 1Password is rate-limiting this service account: %s", what, msg)
		e.Hint = "wait until the limit resets; many reads at once are one request with `rssh secret inject` or a batch"
	case has("isn't a vault", "isn't an item", "isn't a field", "isn't a section", "could not find", "not found", "no item", "no field", "no vault", "does not have a field"):
		e.Kind = ErrNotFound
		e.Msg = fmt.Sprintf("%s: %s", what, msg)
		e.Hint = "check the vault, item and field names (or use their IDs), and that the service account may read that vault"
	case has("(401)", "(403)", "unauthorized", "forbidden", "invalid token", "token is invalid", "decodesacredentials",
		"service account token", "authentication", "not currently signed in", "signin", "sign in", "revoked", "expired"):
		e.Kind = ErrAuth
		e.Msg = fmt.Sprintf("%s: 1Password refused the service account token: %s", what, msg)
		e.Hint = "check the token (--token-file, $CREDENTIALS_DIRECTORY/" + TokenCredential + " or " + TokenEnv + ") and that its service account is not revoked"
	case has("timeout", "timed out", "deadline exceeded", "connection refused", "connection reset", "no such host",
		"network is unreachable", "temporary failure", "tls handshake", "i/o timeout", "unexpected eof",
		"(500)", "(502)", "(503)", "(504)", "internal server error", "bad gateway", "service unavailable"):
		e.Kind = ErrTransient
		e.Msg = fmt.Sprintf("%s: %s", what, msg)
		e.Hint = "check the network connection to 1Password and try again"
	default:
		e.Kind = ErrBackend
		e.Msg = fmt.Sprintf("%s: op failed: %s", what, msg)
		if len(refs) == 1 {
			e.Hint = fmt.Sprintf("run `op read %s` with the same token to see what op needs", strconv.Quote(refs[0]))
		}
	}
	return e
}
