package agentbridge

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// auditHook wraps the bridge's handler and runs hook on each signature's
// audit line before passing it on; an error from hook is the handler's.
type auditHook struct {
	slog.Handler
	hook func() error
}

func (h auditHook) Handle(ctx context.Context, r slog.Record) error {
	var op, result string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "op":
			op = a.Value.String()
		case "result":
			result = a.Value.String()
		}
		return true
	})
	if op == "sign" && result == "signed" {
		if err := h.hook(); err != nil {
			return err
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h auditHook) WithAttrs(as []slog.Attr) slog.Handler {
	return auditHook{h.Handler.WithAttrs(as), h.hook}
}

func (h auditHook) WithGroup(name string) slog.Handler {
	return auditHook{h.Handler.WithGroup(name), h.hook}
}

// hookAudit makes startBridge's adjust function that installs hook.
func hookAudit(hook func() error) func(*Bridge) {
	return func(b *Bridge) { b.log = slog.New(auditHook{b.log.Handler(), hook}) }
}

// signRequest frames an agent sign request for key over data.
func frameSignRequest(key ssh.PublicKey, data []byte) []byte {
	blob := key.Marshal()
	msg := []byte{msgSignRequest}
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(blob)))
	msg = append(msg, blob...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(data)))
	msg = append(msg, data...)
	msg = binary.BigEndian.AppendUint32(msg, 0)
	return frame(msg)
}

// A signature's audit line is written before the signature is sent: while
// the audit sink holds the line, the peer has nothing to read, and once
// the line is written the signature follows (issue 13, item 5).
func TestAuditLineBeforeSignatureLeaves(t *testing.T) {
	f := newFixture(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	b := startBridge(t, Config{Upstream: f.agent.Sock}, hookAudit(func() error {
		entered <- struct{}{}
		<-release
		return nil
	}))
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	c, err := net.Dial("unix", b.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(frameSignRequest(f.k1.PublicKey, []byte("audit me first"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the signature's audit line was never written")
	}
	// The audit sink is now blocked in the middle of the line. A bridge that
	// answers first has already written the reply: it is in the socket and
	// this read returns it at once.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var hdr [4]byte
	if n, err := c.Read(hdr[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the peer read %d bytes (err %v) before the signature's audit line was written", n, err)
	}
	close(release)
	released = true
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	reply, err := readMessage(c, DefaultMaxMessage)
	if err != nil {
		t.Fatalf("reading the reply once the audit line was written: %v", err)
	}
	if reply[0] != msgSignResponse {
		t.Fatalf("reply type %d, want a signature (%d)", reply[0], msgSignResponse)
	}
	b.audit.wantAudit(t, map[string]any{"op": "sign", "result": "signed", "key": fp(f.k1.PublicKey)})
}

// A signature whose audit line cannot be written is refused: the peer gets
// a failure, never an unaudited signature, and the connection carries on.
func TestSignatureWithheldWhenAuditFails(t *testing.T) {
	f := newFixture(t)
	var fail atomic.Bool
	fail.Store(true)
	b := startBridge(t, Config{Upstream: f.agent.Sock}, hookAudit(func() error {
		if fail.Load() {
			return io.ErrShortWrite
		}
		return nil
	}))
	c := client(t, b.sock)
	data := []byte("no audit, no signature")
	if sig, err := c.Sign(f.k1.PublicKey, data); err == nil {
		t.Fatalf("got a signature (%s) whose audit line could not be written", sig.Format)
	}
	b.audit.wantAudit(t, map[string]any{"level": "ERROR", "op": "sign", "decision": "refused", "key": fp(f.k1.PublicKey)})
	fail.Store(false)
	sig, err := c.Sign(f.k1.PublicKey, data)
	if err != nil {
		t.Fatalf("signing once the audit log works again: %v", err)
	}
	if err := f.k1.PublicKey.Verify(data, sig); err != nil {
		t.Fatal(err)
	}
}
