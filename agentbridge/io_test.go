package agentbridge

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

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
