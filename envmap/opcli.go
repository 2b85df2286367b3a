package envmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Source fetches a token by its secret reference.
type Source interface {
	Fetch(ctx context.Context, ref string) (Token, error)
}

// OpOptions configure the 1Password CLI source. The zero value is rssh's
// behaviour: "op" from PATH, rssh's own environment minus credentials, and
// the default retry bounds.
type OpOptions struct {
	// Path is the op binary; "" looks up "op" on PATH.
	Path string
	// Environ is the environment op's own is picked from (see passEnv);
	// nil means os.Environ().
	Environ []string
	// PassServiceAccountToken lets OP_SERVICE_ACCOUNT_TOKEN (and Connect's
	// OP_CONNECT_HOST/OP_CONNECT_TOKEN) through to op, for a laptop that
	// reads the admin vault as a service account on purpose. Off, op reads
	// as the signed-in person even inside a session rssh delivered a token to.
	PassServiceAccountToken bool

	// Attempts bounds how many times op runs for one Fetch (default 4).
	Attempts int
	// MaxElapsed bounds the time spent retrying (default 30 s): no retry
	// starts after it, and a rate limit that asks for a longer wait ends the
	// fetch at once.
	MaxElapsed time.Duration
	// BaseDelay is the first backoff (default 500 ms); each retry doubles it,
	// up to 8 s, and takes a random half to full of it (jitter).
	BaseDelay time.Duration
	// AttemptTimeout bounds one run of op (default 2 min: it may be waiting
	// for a person at a Touch ID prompt).
	AttemptTimeout time.Duration

	Log *slog.Logger
}

// NewOpSource returns the source that runs `op read <ref>`: the reference is
// an argument, the secret comes back on stdout only, and no token is ever in
// op's argv.
func NewOpSource(o OpOptions) Source {
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.MaxElapsed <= 0 {
		o.MaxElapsed = 30 * time.Second
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 500 * time.Millisecond
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &opSource{o}
}

type opSource struct{ o OpOptions }

var _ Source = (*opSource)(nil)

const (
	maxBackoff = 8 * time.Second
	// maxOpOutput caps what we read from op's stdout before sizing buffers:
	// a token is about 1 KiB; anything near this is not a token.
	maxOpOutput = 64 << 10
	maxOpStderr = 16 << 10
)

func (s *opSource) Fetch(ctx context.Context, ref string) (Token, error) {
	start := time.Now()
	deadline := start.Add(s.o.MaxElapsed)
	for attempt := 1; ; attempt++ {
		tok, err := s.readOnce(ctx, ref)
		if err == nil {
			return tok, nil
		}
		var e *Error
		if !errors.As(err, &e) || !(errors.Is(e.kind, ErrTransient) || errors.Is(e.kind, ErrRateLimited)) {
			return Token{}, err
		}
		if attempt >= s.o.Attempts {
			e.msg += gaveUp(attempt)
			return Token{}, e
		}
		wait := s.backoff(attempt)
		asked := retryInDuration(e.RetryIn)
		if asked > wait {
			wait = asked
		}
		if time.Now().Add(wait).After(deadline) {
			if asked == wait {
				// A rate limit that says "retry in 58 minutes": say so
				// rather than sleep through it.
				e.msg += " (not retried: 1Password asks for a longer wait than rssh retries for)"
			} else {
				e.msg += gaveUp(attempt)
			}
			return Token{}, e
		}
		s.o.Log.Debug("op read failed, retrying", "ref", ref, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", e.msg)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Token{}, fmt.Errorf("reading %s: %w", describeRef(ref), context.Cause(ctx))
		case <-t.C:
		}
	}
}

func gaveUp(attempts int) string {
	if attempts == 1 {
		return " (gave up after 1 attempt)"
	}
	return fmt.Sprintf(" (gave up after %d attempts)", attempts)
}

func (s *opSource) backoff(attempt int) time.Duration {
	d := s.o.BaseDelay << (attempt - 1)
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// readOnce runs op once and classifies its failure.
func (s *opSource) readOnce(ctx context.Context, ref string) (Token, error) {
	what := describeRef(ref)
	path := s.o.Path
	if path == "" {
		p, err := exec.LookPath("op")
		if err != nil {
			return Token{}, opMissing(what, err)
		}
		path = p
	}
	actx, cancel := context.WithTimeoutCause(ctx, s.o.AttemptTimeout, errAttemptTimeout)
	defer cancel()
	cmd := exec.CommandContext(actx, path, "read", ref)
	cmd.Env = s.environ()
	cmd.Stdin = nil // /dev/null: op must not read the session's stdin
	stderr := &cappedBuffer{max: maxOpStderr}
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Token{}, err
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return Token{}, opMissing(what, err)
		}
		return Token{}, &Error{kind: ErrOpFailed, err: err, msg: fmt.Sprintf("reading %s: starting op: %v", what, err), hint: "check the 1Password CLI install, " + hintNoToken}
	}
	out, rerr := readSecret(stdout)
	if rerr != nil {
		cancel() // op printed more than a token: stop it
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		clear(out)
		return Token{}, fmt.Errorf("reading %s: %w", what, context.Cause(ctx))
	case errors.Is(context.Cause(actx), errAttemptTimeout):
		clear(out)
		return Token{}, &Error{kind: ErrTransient, err: errAttemptTimeout,
			msg:  fmt.Sprintf("reading %s: op did not answer within %v", what, s.o.AttemptTimeout),
			hint: "answer the 1Password prompt, check the network, " + hintNoToken}
	case rerr != nil:
		clear(out)
		return Token{}, &Error{kind: ErrOpFailed, err: rerr, msg: fmt.Sprintf("reading %s: %v", what, rerr), hint: "check that the item's credential field holds only the token, " + hintNoToken}
	case werr != nil:
		clear(out)
		return Token{}, classify(ref, werr, stderr.String())
	}
	out = trimNewline(out)
	if len(out) == 0 {
		return Token{}, &Error{kind: ErrOpFailed, msg: fmt.Sprintf("reading %s: op printed an empty value", what),
			hint: "put the Service Account token in the item's credential field, " + hintNoToken}
	}
	return NewToken(out), nil
}

var errAttemptTimeout = errors.New("op timed out")

func opMissing(what string, err error) error {
	return &Error{kind: ErrOpMissing, err: err,
		msg:  fmt.Sprintf("reading %s: the 1Password CLI (op) is not installed: %v", what, err),
		hint: "install the 1Password CLI (https://developer.1password.com/docs/cli/get-started/) so that op is on PATH, " + hintNoToken}
}

// environ is op's environment: what op needs to find its config, the
// desktop app and the network, and no credential rssh did not mean to pass.
func (s *opSource) environ() []string {
	env := s.o.Environ
	if env == nil {
		env = os.Environ()
	}
	var out []string
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if ok && s.passEnv(name) {
			out = append(out, kv)
		}
	}
	return out
}

var opEnvNames = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "TMPDIR": true,
	"LANG": true, "LANGUAGE": true, "TZ": true,
	"XDG_CONFIG_HOME": true, "XDG_RUNTIME_DIR": true, "XDG_DATA_HOME": true, "XDG_CACHE_HOME": true,
	"DBUS_SESSION_BUS_ADDRESS": true, "DISPLAY": true, "WAYLAND_DISPLAY": true, "XAUTHORITY": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true, "http_proxy": true, "https_proxy": true, "no_proxy": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true,
}

func (s *opSource) passEnv(name string) bool {
	switch {
	case opEnvNames[name], strings.HasPrefix(name, "LC_"):
		return true
	case name == "OP_SERVICE_ACCOUNT_TOKEN", name == "OP_CONNECT_HOST", name == "OP_CONNECT_TOKEN":
		return s.o.PassServiceAccountToken
	case strings.HasPrefix(name, "OP_"):
		// OP_ACCOUNT, OP_CONFIG_DIR, OP_BIOMETRIC_UNLOCK_ENABLED, and the
		// OP_SESSION_* a manual `op signin` exports.
		return true
	}
	return false
}

// readSecret reads op's stdout into a buffer we own, wiping each buffer it
// outgrows, and refuses more than maxOpOutput.
func readSecret(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxOpOutput {
				clear(buf)
				io.Copy(io.Discard, r)
				return nil, fmt.Errorf("op printed more than %d bytes", maxOpOutput)
			}
			nb := make([]byte, len(buf), min(2*cap(buf), maxOpOutput))
			copy(nb, buf)
			clear(buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
}

// trimNewline drops op's one trailing newline, zeroing it.
func trimNewline(b []byte) []byte {
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		n--
		if n > 0 && b[n-1] == '\r' {
			n--
		}
	}
	clear(b[n:])
	return b[:n]
}

type cappedBuffer struct {
	b   []byte
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string { return string(c.b) }

// describeRef names the item and vault of one of our references, for
// messages: `"SA - production" in vault "Admin"`.
func describeRef(ref string) string {
	vault, item, _ := splitRef(ref)
	if item == "" {
		return strconv.Quote(ref)
	}
	return fmt.Sprintf("%q in vault %q", item, vault)
}

func splitRef(ref string) (vault, item, field string) {
	rest, ok := strings.CutPrefix(ref, "op://")
	if !ok {
		return "", "", ""
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		return "", "", ""
	}
	return parts[0], parts[1], parts[2]
}

// op prefixes its errors with "[ERROR] 2023/06/26 11:55:32 ".
var opErrPrefix = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\[ERROR\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d `) })

// opMessage is op's last non-empty stderr line without its prefix.
func opMessage(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			// Our messages end without a period; op's do.
			return strings.TrimRight(opErrPrefix().ReplaceAllString(l, ""), ". ")
		}
	}
	return ""
}

// classify turns op's failure into an error with a fix. The patterns are
// what op 2.x prints, e.g.
//
//	[ERROR] … You are not currently signed in. Please run `op signin --help` for instructions
//	[ERROR] … "SA - qa" isn't an item in the "Admin" vault. Specify the item with its UUID, name, or domain.
//	[ERROR] … (429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in 58 minutes or try other requests.
func classify(ref string, werr error, stderr string) error {
	what := describeRef(ref)
	vault, item, _ := splitRef(ref)
	msg := opMessage(stderr)
	if msg == "" {
		msg = werr.Error()
	}
	cause := errors.New(msg)
	low := strings.ToLower(msg)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(low, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("(429)", "too many requests", "rate limit"):
		e := &Error{kind: ErrRateLimited, err: cause, RetryIn: retryInPhrase(msg),
			msg:  fmt.Sprintf("reading %s: 1Password is rate-limiting requests: %s", what, msg),
			hint: "wait until the limit resets, " + hintNoToken}
		if e.RetryIn != "" {
			e.hint = "1Password says to retry in " + e.RetryIn + "; wait that long, " + hintNoToken
		}
		return e
	case has("not currently signed in", "not signed in", "no accounts configured", "session expired",
		"authorization prompt dismissed", "authorization timeout", "app is locked", "is locked",
		"connecting to desktop app", "cannot connect to 1password app", "please run `op signin`", "op signin"):
		return &Error{kind: ErrNotSignedIn, err: cause,
			msg:  fmt.Sprintf("reading %s: op is not signed in: %s", what, msg),
			hint: "sign in with `op signin` or unlock the 1Password app, then try again; " + hintNoToken}
	case has("isn't a vault", "vault not found", "no vault"):
		return &Error{kind: ErrNotFound, err: cause,
			msg:  fmt.Sprintf("reading %s: vault %q not found: %s", what, vault, msg),
			hint: fmt.Sprintf("set %s to the vault that holds the %q items (now %q), ", VaultVar, "SA - <env>", vault) + hintNoToken}
	case has("isn't an item", "item not found", "no item", "could not find item", "isn't a field", "does not have a field", "no field"):
		return &Error{kind: ErrNotFound, err: cause,
			msg:  fmt.Sprintf("reading %s: no such item: %s", what, msg),
			hint: fmt.Sprintf("create the item %q with a \"credential\" field holding the Service Account token in vault %q, ", item, vault) + hintNoToken}
	case has("timeout", "timed out", "deadline exceeded", "connection refused", "connection reset", "no such host",
		"network is unreachable", "temporary failure", "tls handshake", "i/o timeout", "unexpected eof",
		"(500)", "(502)", "(503)", "(504)", "internal server error", "bad gateway", "service unavailable"):
		return &Error{kind: ErrTransient, err: cause,
			msg:  fmt.Sprintf("reading %s: %s", what, msg),
			hint: "check the network connection and try again, " + hintNoToken}
	}
	return &Error{kind: ErrOpFailed, err: cause,
		msg:  fmt.Sprintf("reading %s: op failed: %s", what, msg),
		hint: "run `op read \"" + ref + "\"` to see what op needs, " + hintNoToken}
}

// retryIn matches "retry in 58 minutes", "try again in 1 hour 5 minutes".
var (
	retryInRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)(?:retry|try again) in ((?:\d+\s*(?:hours?|hrs?|minutes?|mins?|seconds?|secs?|h|m|s)\b[\s,]*(?:and\s+)?)+)`)
	})
	unitRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)(\d+)\s*(h|m|s)`) })
)

// RetryAfter is how long 1Password's rate-limit message asks to wait
// ("retry in 58 minutes", "try again in 1 hour 5 minutes"); 0 when it says
// nothing. The secret commands read op's errors with it too.
func RetryAfter(msg string) time.Duration { return retryInDuration(retryInPhrase(msg)) }

func retryInPhrase(msg string) string {
	m := retryInRE().FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return strings.TrimRight(strings.TrimSpace(m[1]), ",")
}

func retryInDuration(phrase string) time.Duration {
	var d time.Duration
	for _, m := range unitRE().FindAllStringSubmatch(phrase, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		switch strings.ToLower(m[2]) {
		case "h":
			d += time.Duration(n) * time.Hour
		case "m":
			d += time.Duration(n) * time.Minute
		case "s":
			d += time.Duration(n) * time.Second
		}
	}
	return d
}
