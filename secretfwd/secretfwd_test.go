package secretfwd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/internal/testenv"
)

// The values a secret may hold that a shell or a line format would mangle.
var nasty = []string{
	"$(touch X)",
	"`id`",
	"it's \"quoted\"",
	"100%s %d",
	"line one\nline two\n",
	"grüße, 東京",
	"",
}

// fakeResolver answers "value of <ref>" and counts what it was asked.
type fakeResolver struct {
	mu     sync.Mutex
	calls  int
	refs   []string
	values map[string]string
	err    error
}

func (f *fakeResolver) resolve(_ context.Context, refs []string) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.refs = append(f.refs, refs...)
	if f.err != nil {
		return nil, f.err
	}
	out := make([][]byte, len(refs))
	for i, r := range refs {
		if v, ok := f.values[r]; ok {
			out[i] = []byte(v)
		} else {
			out[i] = []byte("value of " + r)
		}
	}
	return out, nil
}

func (f *fakeResolver) count() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, len(f.refs)
}

func newServer(env string, f *fakeResolver, audit *testenv.Buffer) *Server {
	return &Server{
		Policy:  Policy{Host: "prod-host", RemoteUser: "alice", Env: env},
		Resolve: f.resolve,
		Audit:   NewAudit(audit, nil),
	}
}

// serve runs the server's agent for each connection on a fresh socket.
func serve(t *testing.T, s *Server, upstream func() net.Conn) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rssh-fwd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, l, func(c net.Conn) {
		if upstream == nil {
			s.ServeChannel(c, nil)
			return
		}
		up := upstream()
		defer up.Close()
		s.ServeChannel(c, up)
	})
	return sock
}

func TestValuesByteExact(t *testing.T) {
	f := &fakeResolver{values: map[string]string{}}
	var refs []string
	for i, v := range nasty {
		r := fmt.Sprintf("op://SA - prod/item %d/credential", i)
		f.values[r] = v
		refs = append(refs, r)
	}
	var audit testenv.Buffer
	s := newServer("prod", f, &audit)
	c := &Client{Socket: serve(t, s, nil)}
	ctx := context.Background()
	if !c.Available(ctx) {
		t.Fatal("the query extension does not list secret forwarding")
	}
	got, err := c.ResolveAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range nasty {
		if string(got[i]) != v {
			t.Errorf("%s: got %q, want %q", refs[i], got[i], v)
		}
	}
	if calls, _ := f.count(); calls != 1 {
		t.Errorf("resolver called %d times for one batch, want 1", calls)
	}
	for _, v := range nasty {
		if v != "" && strings.Contains(audit.String(), v) {
			t.Errorf("the audit log holds the value %q:\n%s", v, audit.String())
		}
	}
	if n := strings.Count(audit.String(), "decision=answered"); n != len(refs) {
		t.Errorf("%d answered lines for %d references:\n%s", n, len(refs), audit.String())
	}
}

func TestOutsideVaultRefused(t *testing.T) {
	f := &fakeResolver{}
	var audit testenv.Buffer
	s := newServer("prod", f, &audit)
	c := &Client{Socket: serve(t, s, nil)}
	_, err := c.ResolveAll(context.Background(), []string{"op://SA - prod/GitHub/credential", "op://Private/bank/password", "op://SA - staging/AWS/key"})
	var ref *RefusedError
	if !errors.As(err, &ref) {
		t.Fatalf("error %v, want a refusal", err)
	}
	msg := err.Error()
	for _, want := range []string{`op://Private/bank/password: refused by the laptop: outside this host's environment vault "SA - prod"`, "op://SA - staging/AWS/key: refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "GitHub") {
		t.Errorf("the allowed reference is reported as refused: %q", msg)
	}
	_, n := f.count()
	if n != 1 {
		t.Errorf("resolver asked for %d references, want only the allowed one", n)
	}
	if !strings.Contains(audit.String(), `ref=op://Private/bank/password decision=refused`) {
		t.Errorf("no refusal line in the audit log:\n%s", audit.String())
	}
}

func TestNoEnvironmentRefusesAll(t *testing.T) {
	s := newServer("", &fakeResolver{}, &testenv.Buffer{})
	a := s.Handle(context.Background(), []string{"op://SA - prod/x/y"})
	if a[0].Status != StatusRefused || !strings.Contains(string(a[0].Data), "no environment") {
		t.Errorf("answer %+v", a[0])
	}
}

func TestCacheAndRateLimit(t *testing.T) {
	f := &fakeResolver{}
	s := newServer("prod", f, &testenv.Buffer{})
	s.Limit, s.Window = 5, time.Hour
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		a := s.Handle(ctx, []string{"op://SA - prod/GitHub/credential"})
		if a[0].Status != StatusValue {
			t.Fatalf("read %d: %+v", i, a[0])
		}
	}
	if calls, _ := f.count(); calls != 1 {
		t.Errorf("100 reads of one reference resolved %d times, want 1", calls)
	}
	var burst []string
	for i := 0; i < 8; i++ {
		burst = append(burst, fmt.Sprintf("op://SA - prod/item%d/credential", i))
	}
	answers := s.Handle(ctx, burst)
	var ok, refused int
	for _, a := range answers {
		switch a.Status {
		case StatusValue:
			ok++
		case StatusRefused:
			refused++
			if want := "rate limit reached: at most 5 references are resolved per 1h0m0s in one session"; string(a.Data) != want {
				t.Errorf("refusal %q, want %q", a.Data, want)
			}
		}
	}
	if ok != 4 || refused != 4 {
		t.Errorf("%d answered, %d refused; want 4 and 4 (one of the 5 went to the first reference)", ok, refused)
	}
	// The cached reference is still answered at the limit.
	if a := s.Handle(ctx, []string{"op://SA - prod/GitHub/credential"}); a[0].Status != StatusValue {
		t.Errorf("cached read at the limit: %+v", a[0])
	}
	// Past the TTL and the window, it is resolved again.
	now = now.Add(2 * time.Hour)
	if a := s.Handle(ctx, []string{"op://SA - prod/GitHub/credential"}); a[0].Status != StatusValue {
		t.Errorf("read after the window: %+v", a[0])
	}
	if calls, _ := f.count(); calls != 3 {
		t.Errorf("resolver called %d times, want 3 (first read, the burst, after expiry)", calls)
	}
}

func TestConfirm(t *testing.T) {
	f := &fakeResolver{}
	s := newServer("prod", f, &testenv.Buffer{})
	s.TTL = time.Nanosecond // every read goes to the resolver
	asked := map[string]int{}
	s.Confirm = func(ref string) (bool, error) {
		asked[ref]++
		return !strings.Contains(ref, "deny"), nil
	}
	ctx := context.Background()
	for range 3 {
		s.Handle(ctx, []string{"op://SA - prod/allow/credential"})
	}
	a := s.Handle(ctx, []string{"op://SA - prod/deny/credential"})
	if asked["op://SA - prod/allow/credential"] != 1 {
		t.Errorf("asked %d times for one reference, want once", asked["op://SA - prod/allow/credential"])
	}
	if a[0].Status != StatusRefused || string(a[0].Data) != "declined on the laptop" {
		t.Errorf("declined reference answered %+v", a[0])
	}
	if _, n := f.count(); n != 3 {
		t.Errorf("resolver asked for %d references, want 3 (the declined one never)", n)
	}
}

func TestResolverFailure(t *testing.T) {
	f := &fakeResolver{err: errors.New("op read op://SA - prod/x/y: \"x\" isn't an item in the \"SA - prod\" vault")}
	s := newServer("prod", f, &testenv.Buffer{})
	c := &Client{Socket: serve(t, s, nil)}
	_, err := c.ResolveAll(context.Background(), []string{"op://SA - prod/x/y"})
	if err == nil || !strings.Contains(err.Error(), "op://SA - prod/x/y: the laptop could not resolve it: op read") {
		t.Errorf("error %v", err)
	}
}

func TestClosedSessionRefuses(t *testing.T) {
	s := newServer("prod", &fakeResolver{}, &testenv.Buffer{})
	s.Handle(context.Background(), []string{"op://SA - prod/a/b"})
	s.Close()
	if len(s.cache) != 0 {
		t.Error("values cached after Close")
	}
	if a := s.Handle(context.Background(), []string{"op://SA - prod/a/b"}); a[0].Status != StatusRefused {
		t.Errorf("answer after Close: %+v", a[0])
	}
}

func TestSocketGone(t *testing.T) {
	dir := t.TempDir()
	c := &Client{Socket: filepath.Join(dir, "agent.sock")}
	start := time.Now()
	_, err := c.ResolveAll(context.Background(), []string{"op://SA - prod/a/b"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the laptop") {
		t.Fatalf("error %v", err)
	}
	if time.Since(start) > dialTimeout {
		t.Errorf("a missing socket took %v to fail", time.Since(start))
	}
	if (&Client{}).Available(context.Background()) {
		t.Error("no socket is available")
	}
}

// Without ForwardAgent the channel is secrets only: no keys, no signatures.
func TestNoUpstreamNoKeys(t *testing.T) {
	s := newServer("prod", &fakeResolver{}, &testenv.Buffer{})
	conn, err := net.Dial("unix", serve(t, s, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	a := agent.NewClient(conn)
	keys, err := a.List()
	if err != nil || len(keys) != 0 {
		t.Errorf("List: %d keys, %v", len(keys), err)
	}
	if _, err := a.Sign(testenv.NewPublicKey(t), []byte("data")); err == nil {
		t.Error("a signature without an upstream agent")
	}
}

// With ForwardAgent the user's keys work as with -A, next to the secrets;
// and a plain ssh-agent, asked for secrets, says it has no such thing.
func TestUpstreamAgent(t *testing.T) {
	ag := testenv.StartAgent(t)
	key := testenv.NewKey(t, t.TempDir(), "id_ed25519")
	ag.Add(t, key)
	s := newServer("prod", &fakeResolver{}, &testenv.Buffer{})
	sock := serve(t, s, func() net.Conn {
		up, err := net.Dial("unix", ag.Sock)
		if err != nil {
			t.Error(err)
		}
		return up
	})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	a := agent.NewClient(conn)
	keys, err := a.List()
	if err != nil || len(keys) != 1 {
		t.Fatalf("List: %d keys, %v", len(keys), err)
	}
	sig, err := a.Sign(keys[0], []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys[0].Verify([]byte("data"), sig); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	c := &Client{Socket: sock}
	if v, err := c.ResolveAll(context.Background(), []string{"op://SA - prod/a/b"}); err != nil || string(v[0]) != "value of op://SA - prod/a/b" {
		t.Errorf("secret next to the agent: %q, %v", v, err)
	}

	plain := &Client{Socket: ag.Sock}
	if plain.Available(context.Background()) {
		t.Error("a plain ssh-agent claims secret forwarding")
	}
	if _, err := plain.ResolveAll(context.Background(), []string{"op://SA - prod/a/b"}); err == nil || !strings.Contains(err.Error(), "does not forward secrets") {
		t.Errorf("plain agent: %v", err)
	}
}

func TestAuditFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "rssh", "audit.log")
	a, closer, err := OpenAudit(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Record("h", "u", "op://SA - prod/a/b", "refused", "outside\nthe vault")
	closer.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Errorf("audit dir mode %v, want 0700", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Errorf("%d lines, want one line per record:\n%s", n, b)
	}
	if !strings.Contains(string(b), `host=h user=u ref="op://SA - prod/a/b" decision=refused reason="outside\nthe vault"`) {
		t.Errorf("line %q", b)
	}
	p, _ := DefaultAuditPath(func(k string) string { return map[string]string{"HOME": "/home/a"}[k] })
	if p != "/home/a/.local/state/rssh/audit.log" {
		t.Errorf("default path %s", p)
	}
}

func TestWireRoundTrip(t *testing.T) {
	refs := []string{"op://SA - prod/a/b", "op://v/i/s/f?attribute=otp"}
	b, err := EncodeRequest(refs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRequest(b)
	if err != nil || strings.Join(got, "|") != strings.Join(refs, "|") {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	if _, err := EncodeRequest(make([]string, MaxRefs+1)); err == nil {
		t.Error("a request over MaxRefs encoded")
	}
	ans := []Answer{{StatusValue, []byte("v\x00\n")}, {StatusRefused, []byte("no")}}
	rb, _ := EncodeReply(ans)
	back, err := DecodeReply(rb, 2)
	if err != nil || string(back[0].Data) != "v\x00\n" || back[1].Status != StatusRefused {
		t.Fatalf("reply round trip: %+v, %v", back, err)
	}
	if _, err := DecodeReply(rb, 3); err == nil {
		t.Error("a reply with the wrong count accepted")
	}
	q, err := decodeQuery(encodeQuery([]string{"query", Extension}))
	if err != nil || len(q) != 2 || q[1] != Extension {
		t.Errorf("query: %q, %v", q, err)
	}
	// The other shapes agents use for the query reply.
	flat := append([]byte{agentSuccess}, putString(putString(nil, []byte("query")), []byte(Extension))...)
	wrapped := append([]byte{agentExtensionResponse}, putString(nil, putString(putString(nil, []byte("query")), []byte(Extension)))...)
	for _, b := range [][]byte{flat, wrapped} {
		if q, err := decodeQuery(b); err != nil || len(q) != 2 || q[1] != Extension {
			t.Errorf("query shape %x: %q, %v", b, q, err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	b, _ := EncodeRequest([]string{"op://SA - prod/a/b"})
	f.Add(b)
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		refs, err := DecodeRequest(b)
		if err != nil {
			return
		}
		again, err := EncodeRequest(refs)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("decoded %q does not encode back: %v", refs, err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	b, _ := EncodeReply([]Answer{{StatusValue, []byte("x")}})
	f.Add(b, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		DecodeReply(b, n)
		decodeQuery(b)
	})
}
