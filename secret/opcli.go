package secret

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rssh/rssh/envmap"
)

// OpOptions configure the op CLI backend.
type OpOptions struct {
	// Path is the op binary; "" looks "op" up in the PATH of Environ.
	Path string
	// Token is the Service Account token; op gets it in its environment
	// as OP_SERVICE_ACCOUNT_TOKEN, never in argv.
	Token envmap.Token
	// Environ is what op's environment is picked from (see opEnv); nil
	// means os.Environ().
	Environ []string
	// Timeout bounds one run of op (default 2 minutes).
	Timeout time.Duration
}

const (
	// maxOpOutput caps what one op run may print: values are small,
	// documents are not huge; anything past this is refused.
	maxOpOutput = 32 << 20
	maxOpStderr = 16 << 10
)

type opBackend struct {
	o OpOptions
}

var _ Backend = (*opBackend)(nil)

// NewOpBackend returns the backend that runs the 1Password CLI: `op read`
// for one reference, one `op inject` for a batch. It fails with ErrNoBackend
// when op is not installed. It keeps no state between calls: ResolveAll is
// safe to call from several goroutines, and retries are the caller's
// (secret.Retryable says which errors are worth one).
func NewOpBackend(o OpOptions) (Backend, error) {
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Path == "" {
		p, err := LookOp(o.Environ)
		if err != nil {
			return nil, err
		}
		o.Path = p
	}
	if o.Token.IsZero() {
		return nil, &Error{Kind: ErrNoBackend, Msg: "op backend: " + ErrNoToken.Error()}
	}
	return &opBackend{o}, nil
}

// LookOp finds op in the PATH of environ.
func LookOp(environ []string) (string, error) {
	path := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, "op")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &Error{Kind: ErrNoBackend, Msg: "the 1Password CLI (op) is not on PATH",
		Hint: "install the 1Password CLI (https://developer.1password.com/docs/cli/get-started/) so that op is on PATH"}
}

func (b *opBackend) Name() string { return "op" }

// ResolveAll validates every reference first (nothing runs if one is
// malformed), resolves each distinct reference once, and for more than one
// uses a single `op inject`. If that batch fails for a reason that is not
// the account's (a missing item, say), each reference is read on its own so
// the error names exactly the ones that failed.
func (b *opBackend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if err := ValidateRefs(refs); err != nil {
		return nil, err
	}
	var uniq []string
	index := map[string]int{}
	for _, r := range refs {
		if _, ok := index[r]; !ok {
			index[r] = len(uniq)
			uniq = append(uniq, r)
		}
	}
	var vals [][]byte
	var err error
	if len(uniq) == 1 {
		var v []byte
		if v, err = b.read(ctx, uniq[0]); err == nil {
			vals = [][]byte{v}
		}
	} else {
		vals, err = b.inject(ctx, uniq)
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrTransient) && !errors.Is(err, ErrNoBackend) {
			vals, err = b.readEach(ctx, uniq)
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(refs))
	used := make([]bool, len(uniq))
	for i, r := range refs {
		j := index[r]
		if used[j] {
			// Each caller slot owns its bytes: wiping one must not wipe another.
			out[i] = bytes.Clone(vals[j])
			continue
		}
		used[j] = true
		out[i] = vals[j]
	}
	return out, nil
}

// readEach reads references one by one, and reports every one that failed.
func (b *opBackend) readEach(ctx context.Context, refs []string) ([][]byte, error) {
	vals := make([][]byte, len(refs))
	var errs []*Error
	for i, r := range refs {
		v, err := b.read(ctx, r)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				wipeAll(vals)
				return nil, err
			}
			errs = append(errs, e)
			if e.Kind == ErrAuth || e.Kind == ErrRateLimited {
				break // the same for every reference: do not hammer
			}
			continue
		}
		vals[i] = v
	}
	if len(errs) > 0 {
		wipeAll(vals)
		return nil, joinErrors(errs)
	}
	return vals, nil
}

func wipeAll(vals [][]byte) {
	for _, v := range vals {
		clear(v)
	}
}

// read is `op read --no-newline REF`: the value's exact bytes.
func (b *opBackend) read(ctx context.Context, ref string) ([]byte, error) {
	what := "resolving " + quoteRef(ref)
	out, err := b.run(ctx, what, []string{ref}, nil, "read", "--no-newline", ref)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// inject resolves refs with one `op inject`: a template on op's stdin in
// which each reference sits between markers holding a random nonce, so
// values are cut out of op's output by position, whatever bytes (newlines
// included) they hold. A value cannot forge a marker without knowing the
// nonce; the output is still checked to hold each marker exactly once.
func (b *opBackend) inject(ctx context.Context, refs []string) ([][]byte, error) {
	var nb [16]byte
	rand.Read(nb[:])
	nonce := "rssh-" + hex.EncodeToString(nb[:])
	marker := func(i int) string {
		if i == len(refs) {
			return nonce + "-end:"
		}
		return nonce + "-" + strconv.Itoa(i) + ":"
	}
	var tpl bytes.Buffer
	for i, r := range refs {
		tpl.WriteString(marker(i))
		tpl.WriteString("{{ " + r + " }}")
	}
	tpl.WriteString(marker(len(refs)))
	what := fmt.Sprintf("resolving %d references (op inject)", len(refs))
	out, err := b.run(ctx, what, refs, tpl.Bytes(), "inject")
	if err != nil {
		return nil, err
	}
	defer clear(out)
	malformed := &Error{Kind: ErrBackend, Refs: refs, Msg: what + ": op inject answered in a form rssh does not read"}
	if bytes.Count(out, []byte(nonce)) != len(refs)+1 || !bytes.HasPrefix(out, []byte(marker(0))) {
		return nil, malformed
	}
	vals := make([][]byte, len(refs))
	pos := len(marker(0))
	for i := range refs {
		next := bytes.Index(out[pos:], []byte(marker(i+1)))
		if next < 0 {
			wipeAll(vals)
			return nil, malformed
		}
		v := out[pos : pos+next]
		if string(v) == "{{ "+refs[i]+" }}" {
			// op left the tag as text (an op that does not take this
			// reference's spelling inside braces): never pass that on as
			// the value.
			wipeAll(vals)
			return nil, malformed
		}
		vals[i] = bytes.Clone(v)
		pos += next + len(marker(i+1))
	}
	return vals, nil
}

// run runs op once with args, stdin (nil: /dev/null), the token in its
// environment, and returns its stdout, in a buffer the caller owns.
func (b *opBackend) run(ctx context.Context, what string, refs []string, stdin []byte, args ...string) ([]byte, error) {
	actx, cancel := context.WithTimeoutCause(ctx, b.o.Timeout, errOpTimeout)
	defer cancel()
	cmd := exec.CommandContext(actx, b.o.Path, args...)
	cmd.Env = b.env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	stderr := &cappedBuffer{max: maxOpStderr}
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, &Error{Kind: ErrNoBackend, Refs: refs, Msg: fmt.Sprintf("%s: starting op: %v", what, unwrapPath(err)),
			Hint: "check the 1Password CLI install (op on PATH)"}
	}
	out, rerr := readCapped(stdout, maxOpOutput)
	if rerr != nil {
		cancel()
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		clear(out)
		return nil, fmt.Errorf("%s: %w", what, context.Cause(ctx))
	case errors.Is(context.Cause(actx), errOpTimeout):
		clear(out)
		return nil, &Error{Kind: ErrTransient, Refs: refs, Msg: fmt.Sprintf("%s: op did not answer within %v", what, b.o.Timeout),
			Hint: "check the network connection to 1Password and try again"}
	case rerr != nil:
		clear(out)
		return nil, &Error{Kind: ErrBackend, Refs: refs, Msg: fmt.Sprintf("%s: %v", what, rerr)}
	case werr != nil:
		clear(out)
		return nil, classifyOp(what, refs, stderr.String(), werr)
	}
	return out, nil
}

var errOpTimeout = errors.New("op timed out")

// env is op's environment: what op needs to find its config and the
// network, plus the token; no other credential (an inherited
// OP_SERVICE_ACCOUNT_TOKEN, Connect's variables, a personal session) gets
// through to change which account op reads as.
func (b *opBackend) env() []string {
	var out []string
	for _, kv := range b.o.Environ {
		name, _, ok := strings.Cut(kv, "=")
		if ok && opEnvName(name) {
			out = append(out, kv)
		}
	}
	return append(out, TokenEnv+"="+string(b.o.Token.Reveal()))
}

func opEnvName(name string) bool {
	switch name {
	case "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "LANG", "LANGUAGE", "TZ",
		"XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CACHE_HOME",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "OP_CONFIG_DIR", "OP_CACHE":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}

// readCapped reads r to EOF into a buffer it owns, wiping each buffer it
// outgrows, and refuses more than max bytes.
func readCapped(r io.Reader, max int) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) > max {
				clear(buf)
				io.Copy(io.Discard, r)
				return nil, fmt.Errorf("op printed more than %d bytes", max)
			}
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			clear(buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if len(buf) > max {
				clear(buf)
				return nil, fmt.Errorf("op printed more than %d bytes", max)
			}
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
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
