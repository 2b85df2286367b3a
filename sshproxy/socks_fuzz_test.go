package sshproxy

import (
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// FuzzSOCKS feeds arbitrary bytes to the dynamic-forwarding SOCKS server, as
// any local program may: it must never panic or hang, and whatever target it
// hands to dial must be a host and a valid port.
func FuzzSOCKS(f *testing.F) {
	for _, seed := range [][]byte{
		{4, 1, 0, 80, 127, 0, 0, 1, 'u', 0},                                          // SOCKS4
		{4, 1, 0, 80, 0, 0, 0, 1, 0, 'e', 'x', '.', 'o', 'r', 'g', 0},                // SOCKS4a
		{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 22},                                   // SOCKS5 IPv4
		{5, 1, 0, 5, 1, 0, 3, 6, 'e', 'x', '.', 'o', 'r', 'g', 1, 187},               // SOCKS5 name
		{5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 22}, // SOCKS5 IPv6
		{5, 1, 2},          // only username/password offered
		{5, 1, 0, 5, 2, 0}, // BIND
		{4, 1, 0, 80, 0, 0, 0, 1, 0},
		{9},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		var target string
		dial := func(network, addr string) (net.Conn, error) {
			target = addr
			return nil, errors.New("refused by the test")
		}
		go func() {
			defer close(done)
			serveSOCKS(server, dial, io.Discard)
		}()
		go io.Copy(io.Discard, client) // the replies
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("serveSOCKS did not return for %x", data)
		}
		if target == "" {
			return
		}
		host, port, err := net.SplitHostPort(target)
		if err != nil {
			t.Fatalf("target %q is not host:port: %v", target, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			t.Fatalf("target %q has port %q", target, port)
		}
		_ = host
	})
}
