package sshproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/rssh/rssh/config"
)

// The hops' masters are asked last hop first, each for a stream to the
// host after it; the first that answers carries the rest of the chain and
// the hops before it are not dialed.
func TestJumpStreamAsksLastHopFirst(t *testing.T) {
	resolve := func(host, user string, port int) (*config.Config, error) {
		// Every hop's address is a closed port: dialing one would fail
		// with "connect to host", which the test would see.
		return config.Resolve(config.Request{Host: host, ConfigFile: "none",
			Options: []string{"HostName 127.0.0.1", "Port 1", "BatchMode yes", "UserKnownHostsFile /dev/null", "GlobalKnownHostsFile /dev/null"}})
	}
	dest, err := config.Resolve(config.Request{Host: "dest", ConfigFile: "none",
		Options: []string{"HostName 10.9.8.7", "Port 2222", "ProxyJump a,b,c"}})
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	mux := func(answer string) HopMux {
		return func(ctx context.Context, hop *config.Config, host string, port int) (net.Conn, bool) {
			asked = append(asked, fmt.Sprintf("%s->%s:%d", hop.Host, host, port))
			if hop.Host != answer {
				return nil, false
			}
			c, s := net.Pipe()
			go io.Copy(io.Discard, s) // net.Pipe is synchronous
			go func() { io.WriteString(s, "SSH-2.0-master-stream\r\n"); s.Close() }()
			return c, true
		}
	}
	cl := &Client{Resolve: resolve, Log: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }, Stderr: io.Discard}

	// The last hop's master: its stream goes to the destination as is.
	cl.HopMux = mux("c")
	s, err := cl.jumpStream(context.Background(), dest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(s)
	s.Close()
	if string(b) != "SSH-2.0-master-stream\r\n" || strings.Join(asked, " ") != "c->10.9.8.7:2222" {
		t.Fatalf("stream %q, asked %q", b, asked)
	}

	// The middle hop's master: c is asked first, then b carries the
	// handshake with c (here it fails: the stream is not c's sshd), and a
	// is never dialed.
	asked = nil
	cl.HopMux = mux("b")
	_, err = cl.jumpStream(context.Background(), dest)
	if strings.Join(asked, " ") != "c->10.9.8.7:2222 b->127.0.0.1:1" {
		t.Fatalf("asked %q", asked)
	}
	if err == nil || strings.Contains(err.Error(), "connect to host") {
		t.Fatalf("want c's handshake over b's stream to fail, got %v", err)
	}

	// No master anywhere: each hop is asked, then the first is dialed.
	asked = nil
	cl.HopMux = mux("")
	_, err = cl.jumpStream(context.Background(), dest)
	if len(asked) != 3 || err == nil || !strings.Contains(err.Error(), "connect to host 127.0.0.1 port 1") {
		t.Fatalf("asked %q, err %v", asked, err)
	}
}
