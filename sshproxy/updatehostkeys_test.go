package sshproxy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
)

func newTestSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A server that announces a second host key and proves it in one of
// several ways: only a proof made with that key over this session's
// identifier gets the key into known_hosts.
func TestUpdateHostKeysProof(t *testing.T) {
	for _, c := range []struct {
		proof  string
		stored bool
	}{
		{"good", true}, {"other key", false}, {"other session", false}, {"refused", false}, {"truncated", false},
	} {
		t.Run(c.proof, func(t *testing.T) {
			host, second, other := newTestSigner(t), newTestSigner(t), newTestSigner(t)
			_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
			user, _ := ssh.NewSignerFromKey(userPriv)
			dir := t.TempDir()
			block, _ := ssh.MarshalPrivateKey(userPriv, "")
			id := filepath.Join(dir, "id")
			os.WriteFile(id, pem.EncodeToMemory(block), 0o600)

			sc := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
				if string(k.Marshal()) == string(user.PublicKey().Marshal()) {
					return nil, nil
				}
				return nil, fmt.Errorf("no")
			}}
			sc.AddHostKey(host)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				nc, err := l.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				conn, chans, reqs, err := ssh.NewServerConn(nc, sc)
				if err != nil {
					return
				}
				go func() {
					for nc := range chans {
						nc.Reject(ssh.Prohibited, "no")
					}
				}()
				var ann []byte
				for _, k := range []ssh.PublicKey{host.PublicKey(), second.PublicKey()} {
					ann = appendSSHString(ann, k.Marshal())
				}
				conn.SendRequest(reqHostKeys, false, ann)
				for req := range reqs {
					if req.Type != reqHostKeysProve {
						req.Reply(false, nil)
						continue
					}
					signer, sid := second, conn.SessionID()
					switch c.proof {
					case "other key":
						signer = other
					case "other session":
						sid = []byte("not this session")
					case "refused":
						req.Reply(false, nil)
						continue
					}
					var data []byte
					data = appendSSHString(data, []byte(reqHostKeysProve))
					data = appendSSHString(data, sid)
					data = appendSSHString(data, second.PublicKey().Marshal())
					sig, _ := signer.Sign(rand.Reader, data)
					reply := appendSSHString(nil, ssh.Marshal(sig))
					if c.proof == "truncated" {
						reply = reply[:len(reply)-3]
					}
					req.Reply(true, reply)
				}
			}()
			port := l.Addr().(*net.TCPAddr).Port
			kh := filepath.Join(dir, "known_hosts")
			first := fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(host.PublicKey()))
			os.WriteFile(kh, []byte(first), 0o600)
			cfg := &config.Config{
				Hostname: "127.0.0.1", Port: port, User: "u",
				IdentityFiles: []string{id}, PubkeyAuthentication: true, IdentitiesOnly: true,
				UserKnownHostsFiles: []string{kh}, StrictHostKeyChecking: "yes", LogLevel: "INFO",
				UpdateHostKeys: "yes",
			}
			cl := &Client{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Getenv: func(string) string { return "" }, Stderr: io.Discard}
			conn, err := cl.Dial(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Once the announcement is in, Close waits for the update.
			deadline := time.Now().Add(10 * time.Second)
			for {
				conn.hostKeys.mu.Lock()
				seen := conn.hostKeys.seen
				conn.hostKeys.mu.Unlock()
				if seen || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			conn.Close()
			<-served
			data, _ := os.ReadFile(kh)
			stored := strings.Contains(string(data), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(second.PublicKey()))))
			if stored != c.stored {
				t.Errorf("second key stored: %v, want %v\n%s", stored, c.stored, data)
			}
			if !strings.Contains(string(data), strings.TrimSpace(first)) {
				t.Errorf("the first key is gone:\n%s", data)
			}
		})
	}
}
