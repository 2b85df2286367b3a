package sdk

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
)

// The SDK's core talks to 1Password with Go's http.DefaultClient, which
// honours HTTPS_PROXY and SSL_CERT_FILE (both read once per process). The
// tests point it at net, a proxy on 127.0.0.1 that plays the network:
// nothing leaves the machine, and the proxy counts every attempt.
var net1p = &fakeNet{}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rssh-sdk-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := net1p.start(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("HTTPS_PROXY", "http://"+net1p.ln.Addr().String())
	os.Setenv("HTTP_PROXY", "http://"+net1p.ln.Addr().String())
	os.Unsetenv("NO_PROXY")
	os.Unsetenv("no_proxy")
	os.Setenv("SSL_CERT_FILE", filepath.Join(dir, "ca.pem"))
	code := m.Run()
	net1p.ln.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeNet is an HTTP CONNECT proxy. mode says what 1Password "does":
//
//	refuse   the connection closes at once (no route, nothing listening)
//	hang     the connection is held open, nothing answers
//	http:N   TLS as *.1password.com (a test CA in SSL_CERT_FILE), every
//	         request answered with status N and a JSON error body
type fakeNet struct {
	ln    net.Listener
	cert  tls.Certificate
	mode  atomic.Value // string
	conns atomic.Int64 // connections and requests: every attempt
	hosts sync.Map     // CONNECT targets seen
	hold  chan struct{}
}

func (f *fakeNet) set(t *testing.T, mode string) {
	t.Helper()
	f.mode.Store(mode)
	f.conns.Store(0)
}

func (f *fakeNet) start(dir string) error {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rssh test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "*.1password.com"},
		DNSNames: []string{"*.1password.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	f.cert = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return err
	}
	f.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	f.mode.Store("refuse")
	f.hold = make(chan struct{})
	go func() {
		for {
			c, err := f.ln.Accept()
			if err != nil {
				close(f.hold)
				return
			}
			go f.serve(c)
		}
	}()
	return nil
}

func (f *fakeNet) serve(c net.Conn) {
	defer c.Close()
	f.conns.Add(1)
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	f.hosts.Store(req.Host, true)
	mode := f.mode.Load().(string)
	switch {
	case mode == "refuse":
		return
	case mode == "hang":
		<-f.hold
		return
	case strings.HasPrefix(mode, "http:"):
		if req.Method != http.MethodConnect {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{f.cert}, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			return
		}
		tr := bufio.NewReader(tc)
		for i := 0; i < 20; i++ {
			r, err := http.ReadRequest(tr)
			if err != nil {
				return
			}
			f.conns.Add(1)
			io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			var code int
			fmt.Sscan(strings.TrimPrefix(f.mode.Load().(string), "http:"), &code)
			body := `{"reason":"test","message":"answered by the test"}`
			fmt.Fprintf(tc, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s",
				code, http.StatusText(code), len(body), retryAfter(code), body)
		}
	}
}

// fakeToken is a Service Account token in the real format (ops_ and the
// base64url of the JSON credentials) whose sign-in address is
// rssh-test.1password.com and whose keys are made up: the core accepts it
// and goes to the network to sign in.
func fakeToken() envmap.Token {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	creds := map[string]any{
		"signInAddress":  "rssh-test.1password.com",
		"userAuth":       map[string]any{"method": "SRPg-4096", "alg": "PBES2g-HS256", "iterations": 650000, "salt": b64(make([]byte, 16))},
		"email":          "test@1passwordserviceaccounts.com",
		"srpX":           strings.Repeat("ab", 32),
		"muk":            map[string]any{"alg": "A256GCM", "ext": true, "k": b64(make([]byte, 32)), "key_ops": []string{"encrypt", "decrypt"}, "kty": "oct", "kid": "mp"},
		"secretKey":      "A3-ABCDEF-GHJKLM-NPQRS-TVWXY-Z2345-67892",
		"throttleSecret": map[string]any{"seed": strings.Repeat("cd", 32), "uuid": "abcdefghjkmnpqrstvwxyz2345"},
		"deviceUuid":     "abcdefghjkmnpqrstvwxyz2345",
	}
	j, _ := json.Marshal(creds)
	return envmap.NewToken([]byte("ops_" + b64(j)))
}

const ref = "op://SA - test/GitHub CLI Token/credential"

func kindOf(err error) string {
	for _, k := range []error{secret.ErrNotFound, secret.ErrAuth, secret.ErrRateLimited, secret.ErrTransient, secret.ErrBackend, secret.ErrNoBackend} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return fmt.Sprintf("%T", err)
}

func noSecretIn(t *testing.T, err error, tok envmap.Token) {
	t.Helper()
	if err == nil {
		return
	}
	s := err.Error()
	if tb := tok.Reveal(); len(tb) > 0 && strings.Contains(s, string(tb[4:24])) {
		t.Errorf("error carries the token: %s", s)
	}
	if strings.Contains(s, "\n") {
		t.Errorf("error is not one line: %q", s)
	}
}

// Malformed references fail before the token or the network is used,
// from rssh's parser or the SDK's own.
func TestInvalidReferenceOffline(t *testing.T) {
	net1p.set(t, "refuse")
	b := New(fakeToken(), "test")
	defer b.Close()
	for _, r := range []string{"op://vault/item", "op://vault", "https://x/y/z", "op://v/i/f?attribute=nope", ""} {
		_, err := b.ResolveAll(context.Background(), []string{ref, r})
		if err == nil {
			t.Errorf("%q: no error", r)
			continue
		}
		t.Logf("%q: %v", r, err)
		noSecretIn(t, err, b.tok)
	}
	if n := net1p.conns.Load(); n != 0 {
		t.Errorf("invalid references reached the network: %d connections", n)
	}
	// A valid reference passes the SDK's parser too (the core loads here).
	if err := validateWithSDK(context.Background(), []string{ref, "op://v/i/s/f?attribute=otp"}); err != nil {
		t.Errorf("valid references refused: %v", err)
	}
}

// A malformed token is a clear, permanent error: never the network, never
// retried, the token never in the message.
func TestMalformedToken(t *testing.T) {
	net1p.set(t, "refuse")
	for _, tok := range []string{"not-a-token", "ops_e30", "ops_!!!!", "ops_" + base64.RawURLEncoding.EncodeToString([]byte(`{"signInAddress":"x"}`))} {
		b := New(envmap.NewToken([]byte(tok)), "test")
		_, err := b.ResolveAll(context.Background(), []string{ref})
		if !errors.Is(err, secret.ErrAuth) || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%q: got %s %v, want a malformed-token auth error", tok, kindOf(err), err)
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("error names the token: %v", err)
		}
		start := time.Now()
		_, err2 := b.ResolveAll(context.Background(), []string{ref})
		if err2 == nil || err2.Error() != err.Error() || time.Since(start) > time.Second {
			t.Errorf("%q: second call: %v after %v, want the same error at once", tok, err2, time.Since(start))
		}
		if e := new(secret.Error); errors.As(err, &e) && e.Hint == "" {
			t.Errorf("no hint: %v", err)
		}
		b.Close()
	}
	if n := net1p.conns.Load(); n != 0 {
		t.Errorf("a malformed token reached the network: %d connections", n)
	}
	t.Logf("example: %v", func() error {
		_, err := New(envmap.NewToken([]byte("ops_e30")), "t").ResolveAll(context.Background(), []string{ref})
		return err
	}())
}

// No network: a clear, retryable error, quickly; each call tries again.
func TestNoNetwork(t *testing.T) {
	net1p.set(t, "refuse")
	b := New(fakeToken(), "test")
	defer b.Close()
	for i := 1; i <= 2; i++ {
		start := time.Now()
		_, err := b.ResolveAll(context.Background(), []string{ref})
		d := time.Since(start)
		t.Logf("attempt %d after %v: %v", i, d, err)
		if !errors.Is(err, secret.ErrTransient) || !secret.Retryable(err) {
			t.Fatalf("got %s %v, want a transient error", kindOf(err), err)
		}
		if !strings.Contains(err.Error(), "cannot reach 1Password") {
			t.Errorf("unclear error: %v", err)
		}
		noSecretIn(t, err, b.tok)
		if d > 10*time.Second {
			t.Errorf("took %v to fail without a network", d)
		}
		if n := net1p.conns.Load(); n < int64(i) {
			t.Errorf("attempt %d: %d connections: the failure was cached, not retried", i, n)
		}
	}
	if _, ok := net1p.hosts.Load("rssh-test.1password.com:443"); !ok {
		t.Errorf("the core did not go to the token's sign-in address")
	}
}

// A network that never answers is bounded by the caller's deadline, or by
// the backend's own when the caller has none; the backend works after it.
func TestNetworkHangs(t *testing.T) {
	loadCore(t)
	net1p.set(t, "hang")
	b := New(fakeToken(), "test")
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	start := time.Now()
	_, err := b.ResolveAll(ctx, []string{ref})
	cancel()
	d := time.Since(start)
	t.Logf("after %v: %v", d, err)
	if !errors.Is(err, secret.ErrTransient) || d > 5*time.Second {
		t.Errorf("got %s %v after %v, want a transient error after ~1.5 s", kindOf(err), err, d)
	}
	b.timeout = time.Second // the default (30 s) when the caller sets none
	start = time.Now()
	_, err = b.ResolveAll(context.Background(), []string{ref})
	if d := time.Since(start); !errors.Is(err, secret.ErrTransient) || d > 5*time.Second {
		t.Errorf("no caller deadline: got %s %v after %v", kindOf(err), err, d)
	}
	// The core survives a call cut short: the next failure is as clean.
	net1p.set(t, "refuse")
	_, err = b.ResolveAll(context.Background(), []string{ref})
	if !errors.Is(err, secret.ErrTransient) || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("after a timeout: %s %v", kindOf(err), err)
	}
}

// 1Password's answers, played by the fake network over TLS: a rate limit
// is ErrRateLimited (waited out by fetch, not hammered), a 5xx is
// transient (the core itself retries a 503 until the deadline), a 401 is
// the token's fault.
func TestServerAnswers(t *testing.T) {
	loadCore(t)
	for _, c := range []struct {
		code int
		want error
	}{{503, secret.ErrTransient}, {500, secret.ErrTransient}, {401, secret.ErrAuth}, {429, secret.ErrRateLimited}} {
		net1p.set(t, fmt.Sprintf("http:%d", c.code))
		b := New(fakeToken(), "test")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := b.ResolveAll(ctx, []string{ref})
		cancel()
		t.Logf("%d: %s: %v", c.code, kindOf(err), err)
		if !errors.Is(err, c.want) {
			t.Errorf("HTTP %d: got %s %v, want %v", c.code, kindOf(err), err, c.want)
		}
		noSecretIn(t, err, b.tok)
		if net1p.conns.Load() == 0 {
			t.Errorf("HTTP %d: the fake network saw no connection", c.code)
		}
		b.Close()
	}
}

func TestEmptyBatchAndClosed(t *testing.T) {
	b := New(fakeToken(), "test")
	if v, err := b.ResolveAll(context.Background(), nil); err != nil || len(v) != 0 {
		t.Errorf("empty batch: %v %v", v, err)
	}
	b.Close()
	if !b.tok.IsZero() {
		t.Errorf("Close did not wipe the token")
	}
	if _, err := b.ResolveAll(context.Background(), []string{ref}); !errors.Is(err, secret.ErrNoBackend) {
		t.Errorf("after Close: %v", err)
	}
	if b.Name() != "sdk" {
		t.Errorf("Name() = %q", b.Name())
	}
}

func TestOneLine(t *testing.T) {
	got := oneLine("Post \"https://x.1password.com/api\": dial tcp: no such host (recovered by wazero)\nwasm stack trace:\n\tfoo")
	if got != `Post "https://x.1password.com/api": dial tcp: no such host` {
		t.Errorf("oneLine: %q", got)
	}
	if d := retryIn("rate limit exceeded, try again in 58 minutes"); d != 58*time.Minute {
		t.Errorf("retryIn: %v", d)
	}
}

func retryAfter(code int) string {
	if code == 429 {
		return "Retry-After: 60\r\n"
	}
	return ""
}

// loadCore compiles the core before a test whose deadlines are about the
// network, not the compile.
func loadCore(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := LoadCore(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("core ready in %v", time.Since(start))
}
