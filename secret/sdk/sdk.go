// Package sdk is the secret.Backend over the 1Password Go SDK
// (github.com/1password/onepassword-sdk-go): op:// references resolved
// with a Service Account token and no op CLI.
//
// What the SDK costs, and what this package does about it:
//
//   - The SDK embeds a 9.5 MB WASM core that wazero compiles the first
//     time a process touches it: 6–11 s wall, ~4 s CPU and ~160 MB RSS on
//     a 2-core machine. The compiled core is not cached on disk: v0.4.1
//     builds its extism plugin inside its internal package with a fixed,
//     empty config, so no compilation cache can be handed to it without
//     forking the SDK. A process that resolves once pays it all; that is
//     why rssh keeps one Backend alive in a per-session resolver
//     (secret/resolverd) and why the client path never links this
//     package (see the deps tests).
//   - One client serialises its calls (the core is single-threaded behind
//     a mutex), so a batch is one ResolveAll, never one call per reference.
//   - The SDK's entry points race on the core's lazy start, so every call
//     into it here holds one package lock.
//
// The token stays an envmap.Token up to the SDK's own API, which takes a
// string: that one copy, and the SDK's JSON config in the WASM memory,
// cannot be wiped; nor can the values, which the SDK returns as strings
// (the []byte copies handed out can). Errors never carry a value or the
// token.
package sdk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	onepassword "github.com/1password/onepassword-sdk-go"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
)

// Name is the backend's name as --backend and RSSH_SECRET_BACKEND spell it.
const Name = "sdk"

// DefaultTimeout bounds one call to 1Password when the caller's context
// has no deadline: without it a black-holed network would hold a call for
// the kernel's TCP timeout (minutes).
const DefaultTimeout = 30 * time.Second

// sdkMu serialises every call into the SDK: its core starts lazily with an
// unguarded nil check, and runs one call at a time anyway.
var sdkMu sync.Mutex

// Backend resolves references with one SDK client, made on first use and
// kept for the Backend's life; after a failed call it is made again on the
// next one. Safe for concurrent use (calls run one at a time).
type Backend struct {
	tok     envmap.Token
	version string

	mu      sync.Mutex
	client  *onepassword.Client
	fatal   error // a failure no retry can fix (a malformed token): returned at once
	closed  bool
	timeout time.Duration
}

var _ secret.Backend = (*Backend)(nil)

// New returns a Backend for tok. version is rssh's, sent to 1Password as
// the integration's version. New does no work: the core is compiled and
// the client signed in on the first ResolveAll (or Warm).
func New(tok envmap.Token, version string) *Backend {
	if version == "" {
		version = "dev"
	}
	return &Backend{tok: tok, version: version, timeout: DefaultTimeout}
}

func (b *Backend) Name() string { return Name }

// LoadCore compiles the SDK's WASM core in this process now, with no
// token and no network (it validates a reference). The resolver daemon
// calls it at start so the first request does not wait for the compile;
// benchmarks time it.
func LoadCore(ctx context.Context) error {
	sdkMu.Lock()
	defer sdkMu.Unlock()
	if err := onepassword.Secrets.ValidateSecretReference(ctx, "op://vault/item/field"); err != nil {
		return &secret.Error{Kind: secret.ErrNoBackend, Msg: "1Password SDK: its core did not load: " + oneLine(err.Error())}
	}
	return nil
}

// Warm loads the core and signs the client in, so that a later ResolveAll
// only resolves.
func (b *Backend) Warm(ctx context.Context) error {
	if err := LoadCore(ctx); err != nil {
		return err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.clientLocked(ctx)
	return err
}

// Close drops the client and wipes the token. Later calls fail.
func (b *Backend) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.client = nil
	b.tok.Wipe()
}

// ResolveAll validates every reference (first rssh's own parser, then the
// SDK's, neither of which needs the network or the token), then resolves
// the distinct ones in one SDK ResolveAll. Any failure fails the batch:
// no values, one error naming every reference that failed.
func (b *Backend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	if len(refs) == 0 {
		return [][]byte{}, nil
	}
	if err := secret.ValidateRefs(refs); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	uniq := slices.Compact(slices.Sorted(slices.Values(refs)))
	// Validation compiles the core on a first call: the default deadline
	// is for the network and starts after it.
	if err := validateWithSDK(ctx, uniq); err != nil {
		return nil, err
	}
	ctx, cancel := b.bound(ctx)
	defer cancel()
	c, err := b.clientLocked(ctx)
	if err != nil {
		return nil, err
	}
	sdkMu.Lock()
	resp, err := c.Secrets().ResolveAll(ctx, uniq)
	sdkMu.Unlock()
	if err != nil {
		// The client may be half-way through something; the next call
		// signs in again (the core stays compiled).
		b.client = nil
		return nil, classify(ctx, "resolving "+describe(uniq), uniq, err)
	}
	got := make(map[string][]byte, len(uniq))
	var errs []*secret.Error
	for _, r := range uniq {
		one, ok := resp.IndividualResponses[r]
		switch {
		case !ok:
			errs = append(errs, &secret.Error{Kind: secret.ErrBackend, Refs: []string{r}, Msg: r + ": 1Password SDK gave no answer for it"})
		case one.Error != nil:
			errs = append(errs, refError(r, one.Error))
		case one.Content == nil:
			errs = append(errs, &secret.Error{Kind: secret.ErrBackend, Refs: []string{r}, Msg: r + ": 1Password SDK gave neither a value nor an error"})
		default:
			got[r] = []byte(one.Content.Secret)
		}
	}
	if len(errs) > 0 {
		for _, v := range got {
			clear(v)
		}
		return nil, join(errs)
	}
	out := make([][]byte, len(refs))
	for i, r := range refs {
		v := got[r]
		if i > 0 && slices.Contains(refs[:i], r) {
			v = slices.Clone(v) // each out[i] is the caller's to wipe
		}
		out[i] = v
	}
	return out, nil
}

func (b *Backend) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || b.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.timeout)
}

// clientLocked returns the signed-in client, making it if needed. b.mu is
// held.
func (b *Backend) clientLocked(ctx context.Context) (*onepassword.Client, error) {
	if b.closed {
		return nil, &secret.Error{Kind: secret.ErrNoBackend, Msg: "1Password SDK backend is closed"}
	}
	if b.fatal != nil {
		return nil, b.fatal
	}
	if b.client != nil {
		return b.client, nil
	}
	if b.tok.IsZero() {
		return nil, &secret.Error{Kind: secret.ErrNoBackend, Msg: "1Password SDK: " + secret.ErrNoToken.Error()}
	}
	sdkMu.Lock()
	c, err := onepassword.NewClient(ctx,
		onepassword.WithServiceAccountToken(string(b.tok.Reveal())),
		onepassword.WithIntegrationInfo("rssh", b.version))
	sdkMu.Unlock()
	if err != nil {
		e := classify(ctx, "signing in to 1Password", nil, err)
		if e.Kind == secret.ErrAuth && isMalformedToken(err) {
			// The token cannot parse: no retry, no network, ever.
			b.fatal = e
		}
		return nil, e
	}
	b.client = c
	return c, nil
}

// validateWithSDK runs the core's own reference parser on each reference:
// offline and a few ms each once the core is loaded. A malformed reference
// is reported before any sign-in, whatever the network does.
func validateWithSDK(ctx context.Context, refs []string) error {
	sdkMu.Lock()
	defer sdkMu.Unlock()
	var errs []*secret.Error
	for _, r := range refs {
		if err := onepassword.Secrets.ValidateSecretReference(ctx, r); err != nil {
			msg := oneLine(err.Error())
			if strings.Contains(msg, "failed to initialize plugin") {
				return &secret.Error{Kind: secret.ErrNoBackend, Msg: "1Password SDK: its core did not load: " + msg}
			}
			errs = append(errs, &secret.Error{Kind: secret.ErrBackend, Refs: []string{r},
				Msg: fmt.Sprintf("invalid secret reference %s: %s", r, msg), Hint: "a reference is op://vault/item/[section/]field[?attribute=…]"})
		}
	}
	if len(errs) > 0 {
		return join(errs)
	}
	return nil
}

// refError is one reference's failure inside a ResolveAll answer.
func refError(ref string, e *onepassword.ResolveReferenceError) *secret.Error {
	out := &secret.Error{Refs: []string{ref}}
	switch e.Type {
	case onepassword.ResolveReferenceErrorTypeVariantVaultNotFound:
		out.Kind, out.Msg = secret.ErrNotFound, ref+": no such vault (or the service account may not read it)"
	case onepassword.ResolveReferenceErrorTypeVariantItemNotFound:
		out.Kind, out.Msg = secret.ErrNotFound, ref+": no such item in that vault"
	case onepassword.ResolveReferenceErrorTypeVariantFieldNotFound:
		out.Kind, out.Msg = secret.ErrNotFound, ref+": no such field in that item"
	case onepassword.ResolveReferenceErrorTypeVariantNoMatchingSections:
		out.Kind, out.Msg = secret.ErrNotFound, ref+": no such section in that item"
	case onepassword.ResolveReferenceErrorTypeVariantTooManyVaults, onepassword.ResolveReferenceErrorTypeVariantTooManyItems,
		onepassword.ResolveReferenceErrorTypeVariantTooManyMatchingFields:
		out.Kind, out.Msg = secret.ErrNotFound, ref+": more than one match ("+string(e.Type)+")"
		out.Hint = "name the vault, item or field by its ID instead"
	default:
		out.Kind, out.Msg = secret.ErrBackend, ref+": 1Password SDK: "+string(e.Type)
	}
	if out.Kind == secret.ErrNotFound && out.Hint == "" {
		out.Hint = "check the vault, item and field names (or use their IDs), and that the service account may read that vault"
	}
	return out
}

// classify turns an SDK error into a secret.Error of the right kind.
// The SDK's errors are strings from its core (or Go's HTTP client, panicked
// through wazero), so this matches on their text, one line of it.
func classify(ctx context.Context, what string, refs []string, err error) *secret.Error {
	msg := oneLine(err.Error())
	low := strings.ToLower(msg)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(low, s) {
				return true
			}
		}
		return false
	}
	e := &secret.Error{Refs: refs}
	var rl *onepassword.RateLimitExceededError
	var ne net.Error
	switch {
	case errors.As(err, &rl) || has("rate limit", "too many requests", "(429)"):
		e.Kind = secret.ErrRateLimited
		e.RetryIn = retryIn(msg)
		e.Msg = fmt.Sprintf("%s: 1Password is rate-limiting this service account: %s", what, msg)
		e.Hint = "wait until the limit resets; many reads at once are one batch (rssh secret run, inject or fetch)"
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || has("context deadline exceeded", "context canceled"):
		e.Kind = secret.ErrTransient
		e.Msg = fmt.Sprintf("%s: no answer from 1Password in time: %s", what, msg)
		e.Hint = "check the network connection to 1Password (https://my.1password.com) and try again"
	case isMalformedToken(err):
		e.Kind = secret.ErrAuth
		e.Msg = fmt.Sprintf("%s: the service account token is malformed: %s", what, msg)
		e.Hint = "the token is the whole ops_… string of a service account; check --token-file, $CREDENTIALS_DIRECTORY/" + secret.TokenCredential + " or " + secret.TokenEnv
	case errors.As(err, &ne) || has("dial tcp", "proxyconnect", "no such host", "connection refused", "connection reset",
		"network is unreachable", "i/o timeout", "tls handshake", "eof", "timeout", "temporarily", "(500)", "(502)", "(503)", "(504)",
		"internal server error", "bad gateway", "service unavailable", "server error"):
		e.Kind = secret.ErrTransient
		e.Msg = fmt.Sprintf("%s: cannot reach 1Password (or it failed): %s", what, msg)
		e.Hint = "check the network connection to 1Password (https://my.1password.com) and try again"
	case has("(401)", "(403)", "unauthorized", "forbidden", "invalid service account", "revoked", "expired", "authentication", "auth failed"):
		e.Kind = secret.ErrAuth
		e.Msg = fmt.Sprintf("%s: 1Password refused the service account token: %s", what, msg)
		e.Hint = "check the token and that its service account is not revoked"
	default:
		e.Kind = secret.ErrBackend
		e.Msg = fmt.Sprintf("%s: 1Password SDK: %s", what, msg)
	}
	return e
}

// isMalformedToken is the core's answer for a token that cannot parse
// (checked before any network use).
func isMalformedToken(err error) bool {
	low := strings.ToLower(err.Error())
	return strings.Contains(low, "service account token had invalid format") ||
		strings.Contains(low, "deserialization failed") ||
		strings.Contains(low, "base64 decoding failed") ||
		strings.Contains(low, "please create another token")
}

var (
	retryInRE  = regexp.MustCompile(`(?i)(?:retry|try again)(?: after| in) (\d+)\s*(hours?|h|minutes?|mins?|m|seconds?|secs?|s)\b`)
	stackRE    = regexp.MustCompile(`\s*\(recovered by wazero\).*$`)
	maxMsgSize = 300
)

// retryIn reads "try again in 58 minutes" from a rate-limit message.
func retryIn(msg string) time.Duration {
	m := retryInRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	switch strings.ToLower(m[2])[0] {
	case 'h':
		return time.Duration(n) * time.Hour
	case 'm':
		return time.Duration(n) * time.Minute
	}
	return time.Duration(n) * time.Second
}

// oneLine is an SDK error's first line without wazero's trailer, control
// characters dropped, capped.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = stackRE.ReplaceAllString(s, "")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxMsgSize {
		s = s[:maxMsgSize] + "…"
	}
	return strings.TrimRight(s, ". ")
}

func describe(refs []string) string {
	if len(refs) == 1 {
		return refs[0]
	}
	return fmt.Sprintf("%d references", len(refs))
}

// join makes one error of several per-reference failures: the first's
// kind, every reference, every message on one line.
func join(errs []*secret.Error) *secret.Error {
	if len(errs) == 1 {
		return errs[0]
	}
	out := &secret.Error{Kind: errs[0].Kind, Hint: errs[0].Hint}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		out.Refs = append(out.Refs, e.Refs...)
		msgs[i] = e.Msg
	}
	out.Msg = fmt.Sprintf("%d references failed: %s", len(errs), strings.Join(msgs, "; "))
	return out
}
