package sshproxy

import (
	"io"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/internal/testenv"
)

// A filter sees every forwarded agent channel, with the user's agent
// behind it when there is one and nil when there is none (optional).
func TestAgentChannelFilter(t *testing.T) {
	c, s := startFwdServer(t, false)
	ag := testenv.StartAgent(t)
	ag.Add(t, testenv.NewKey(t, t.TempDir(), "id_ed25519"))

	type seen struct{ local bool }
	got := make(chan seen, 4)
	filter := func(ch io.ReadWriter, local io.ReadWriter) error {
		got <- seen{local != nil}
		if local == nil {
			return nil
		}
		// Pass one request through, as the secret filter passes what it
		// does not answer itself.
		return pipeOnce(ch, local)
	}
	c.ServeAgentWith(ag.Sock, true, filter)

	ch, reqs, err := s.sconn.OpenChannel(agentChannel, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range reqs {
		}
	}()
	keys, err := agent.NewClient(ch).List()
	ch.Close()
	if err != nil || len(keys) != 1 {
		t.Fatalf("List through the filter: %d keys, %v", len(keys), err)
	}
	if v := <-got; !v.local {
		t.Error("the filter ran without the user's agent")
	}

	// No agent at all: with optional the channel still opens, filter alone.
	c2, s2 := startFwdServer(t, false)
	c2.ServeAgentWith(filepath.Join(t.TempDir(), "missing.sock"), true, filter)
	ch2, reqs2, err := s2.sconn.OpenChannel(agentChannel, nil)
	if err != nil {
		t.Fatalf("channel refused without an agent: %v", err)
	}
	go func() {
		for range reqs2 {
		}
	}()
	ch2.Close()
	if v := <-got; v.local {
		t.Error("the filter got an agent that does not exist")
	}

	// ServeAgent keeps refusing when there is no agent.
	c3, s3 := startFwdServer(t, false)
	c3.ServeAgent("")
	if _, _, err := s3.sconn.OpenChannel(agentChannel, nil); err == nil {
		t.Error("a channel opened with no agent and no filter")
	}
}

// pipeOnce relays one agent request and its reply.
func pipeOnce(ch, local io.ReadWriter) error {
	for _, dir := range [][2]io.ReadWriter{{ch, local}, {local, ch}} {
		var hdr [4]byte
		if _, err := io.ReadFull(dir[0], hdr[:]); err != nil {
			return err
		}
		n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
		body := make([]byte, n)
		if _, err := io.ReadFull(dir[0], body); err != nil {
			return err
		}
		if _, err := dir[1].Write(append(hdr[:], body...)); err != nil {
			return err
		}
	}
	return nil
}
