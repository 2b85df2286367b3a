package agentbridge

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// unixPair is a connected pair of unix stream sockets.
func unixPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "pair.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	a, err = net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// A write far larger than the socket buffer (8 MiB against ~200 KiB) goes
// out whole: the raw path meets EAGAIN many times, waits in the netpoller
// and resumes where it stopped.
func TestRawIOLargeWriteSlowReader(t *testing.T) {
	a, b := unixPair(t)
	w, r := newRawIO(a), newRawIO(b)
	payload := make([]byte, 8<<20)
	rand.Read(payload)
	done := make(chan error, 1)
	go func() {
		n, err := w.Write(payload)
		if err == nil && n != len(payload) {
			err = io.ErrShortWrite
		}
		a.Close()
		done <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil || n != int64(len(payload)) {
		t.Fatalf("read %d of %d bytes: %v", n, len(payload), err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if want := sha256.Sum256(payload); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("payload corrupted on the way")
	}
}

// Deadlines still apply on the raw path, and a peer gone is EOF for a read
// and an error (not a SIGPIPE that kills the bridge) for a write.
func TestRawIODeadlineEOFAndBrokenPipe(t *testing.T) {
	a, b := unixPair(t)
	ra := newRawIO(a)
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := ra.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	a.SetReadDeadline(time.Time{})
	b.Close()
	if _, err := ra.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("read from a closed peer: %v, want io.EOF", err)
	}
	var err error
	for i := 0; i < 3 && err == nil; i++ { // the first write may still be accepted
		_, err = ra.Write([]byte("to nobody"))
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
}

// Messages bigger than the read buffer, both ways through the bridge: a
// list answer of several KiB (long comments) and a 100 KiB sign request.
func TestMessagesLargerThanBuffer(t *testing.T) {
	ag := testenv.StartAgent(t)
	up, err := net.Dial("unix", ag.Sock)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	upc := agent.NewClient(up) // one client per connection: each runs a reader
	var first ssh.PublicKey
	for i := 0; i < 6; i++ {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		comment := strings.Repeat(string(rune('a'+i)), 900)
		if err := upc.Add(agent.AddedKey{PrivateKey: priv, Comment: comment}); err != nil {
			t.Fatalf("adding a key upstream: %v", err)
		}
		if first == nil {
			first, _ = ssh.NewPublicKey(priv.Public())
		}
	}
	b := startBridge(t, Config{Upstream: ag.Sock}, nil)
	c := client(t, b.sock)
	keys, err := c.List()
	if err != nil || len(keys) != 6 {
		t.Fatalf("list through the bridge: %d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		if len(k.Comment) != 900 {
			t.Errorf("comment of %d bytes came back as %d", 900, len(k.Comment))
		}
	}
	data := make([]byte, 100<<10)
	rand.Read(data)
	sig, err := c.Sign(first, data)
	if err != nil {
		t.Fatalf("sign 100 KiB through the bridge: %v", err)
	}
	if err := first.Verify(data, sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
}

// A deadline is left alone while it is nearly current, and moved once it
// has aged by a sixteenth of the timeout, for short timeouts as for long.
func TestExtendDeadline(t *testing.T) {
	for _, d := range []time.Duration{160 * time.Millisecond, 10 * time.Minute} {
		var by time.Time
		sets := 0
		set := func(time.Time) error { sets++; return nil }
		extendDeadline(set, &by, d)
		extendDeadline(set, &by, d)
		if sets != 1 {
			t.Fatalf("timeout %v: %d sets for two calls in a row, want 1", d, sets)
		}
		by = by.Add(-d / 8) // as if d/8 had passed
		extendDeadline(set, &by, d)
		if sets != 2 || time.Until(by) < d-d/16 {
			t.Fatalf("timeout %v: aged deadline not moved (sets %d, %v left)", d, sets, time.Until(by))
		}
	}
}
