package testenv

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
)

// ShareDir is a temp dir other users (uid 65534) can reach, unlike
// t.TempDir()'s 0700 parents. It is removed when the test ends.
func ShareDir(t TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rssh-share-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ReadPub parses the public key in an OpenSSH .pub (authorized_keys format)
// file.
func ReadPub(t TB, path string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k
}

// Serve accepts connections on l until the test ends and runs handle on
// each in its own goroutine, closing the connection when handle returns.
// At the end it closes l and every open connection, and waits for the
// handlers. An Accept error (l closed) ends the loop: no nil connection is
// ever handled.
func Serve(t TB, l net.Listener, handle func(net.Conn)) {
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]struct{}{}
		closed bool
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = struct{}{}
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// StartEcho is a TCP echo server on loopback, stopped when the test ends.
func StartEcho(t TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	Serve(t, l, func(c net.Conn) { io.Copy(c, c) })
	return l
}

// NewPublicKey is a fresh ed25519 public key, for tests that need a key
// and no file.
func NewPublicKey(t TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("%v", err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return k
}
