package sshproxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
)

// partialServer is an in-process server that wants two credentials, as
// sshd's AuthenticationMethods: first the public key first, then second
// (a public key other than the first, or a password). It records every key
// offered in the second step.
type partialServer struct {
	mu      sync.Mutex
	offered []ssh.PublicKey // keys offered after the partial success
}

func (p *partialServer) start(t *testing.T, first ssh.PublicKey, second string, secondKey ssh.PublicKey) (port int, kh string) {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	sc := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), first.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("not this key")
		},
		VerifiedPublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			if !bytes.Equal(k.Marshal(), first.Marshal()) {
				return nil, nil // the second step's key: logged in
			}
			next := ssh.ServerAuthCallbacks{}
			switch second {
			case "publickey":
				next.PublicKeyCallback = func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
					p.mu.Lock()
					p.offered = append(p.offered, k)
					p.mu.Unlock()
					if bytes.Equal(k.Marshal(), secondKey.Marshal()) {
						return nil, nil
					}
					return nil, errors.New("not this key")
				}
			case "password":
				next.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
					if string(pw) == "secret" {
						return nil, nil
					}
					return nil, errors.New("bad password")
				}
			}
			return nil, &ssh.PartialSuccessError{Next: next}
		},
	}
	sc.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				conn, chans, reqs, err := ssh.NewServerConn(nc, sc)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				go func() {
					for nc := range chans {
						nc.Reject(ssh.Prohibited, "no")
					}
				}()
				conn.Wait()
			}()
		}
	}()
	port = l.Addr().(*net.TCPAddr).Port
	kh = filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, fmt.Appendf(nil, "[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey())), 0o600)
	return port, kh
}

func writeTestKey(t *testing.T, dir, name string) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := ssh.NewSignerFromKey(priv)
	return p, s.PublicKey()
}

// After a partial success for one key, rssh offers the next identities and
// never the accepted one again; a second step that wants a password is
// asked for one; with a single key the login fails.
func TestPartialSuccess(t *testing.T) {
	dir := t.TempDir()
	k1, pub1 := writeTestKey(t, dir, "id_1")
	k2, pub2 := writeTestKey(t, dir, "id_2")
	k3, pub3 := writeTestKey(t, dir, "id_3")
	dial := func(port int, kh string, ids ...string) error {
		cfg := &config.Config{
			Hostname: "127.0.0.1", Port: port, User: "u",
			IdentityFiles: ids, PubkeyAuthentication: true, IdentitiesOnly: true,
			PasswordAuthentication: true, NumberOfPasswordPrompts: 1,
			UserKnownHostsFiles: []string{kh}, StrictHostKeyChecking: "yes", LogLevel: "INFO",
		}
		cl := &Client{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Prompt: answerPrompt{}, Getenv: func(string) string { return "" }, Stderr: io.Discard}
		c, err := cl.Dial(context.Background(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}

	t.Run("publickey,publickey", func(t *testing.T) {
		srv := &partialServer{}
		port, kh := srv.start(t, pub1, "publickey", pub3)
		if err := dial(port, kh, k1, k2, k3); err != nil {
			t.Fatalf("login with two keys: %v (offered %d)", err, len(srv.offered))
		}
		for _, k := range srv.offered {
			if bytes.Equal(k.Marshal(), pub1.Marshal()) {
				t.Errorf("the key accepted first was offered again after the partial success")
			}
		}
		if !slices.ContainsFunc(srv.offered, func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), pub2.Marshal()) }) {
			t.Errorf("the second identity was not offered after the partial success: %d keys", len(srv.offered))
		}
	})
	t.Run("one key is not enough", func(t *testing.T) {
		srv := &partialServer{}
		port, kh := srv.start(t, pub1, "publickey", pub3)
		if err := dial(port, kh, k1, k2); err == nil {
			t.Fatal("logged in with the first key only")
		}
		if len(srv.offered) != 1 || !bytes.Equal(srv.offered[0].Marshal(), pub2.Marshal()) {
			t.Errorf("offered %d keys after the partial success, want id_2 alone", len(srv.offered))
		}
	})
	t.Run("publickey,password", func(t *testing.T) {
		srv := &partialServer{}
		port, kh := srv.start(t, pub2, "password", nil)
		if err := dial(port, kh, k1, k2); err != nil {
			t.Fatalf("login with key then password: %v", err)
		}
	})
}
