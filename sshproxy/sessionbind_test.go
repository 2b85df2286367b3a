package sshproxy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"
)

// kexTapConn runs one x/crypto handshake over loopback with the client
// behind a kexTap and returns the tap and the client's session ID.
func kexTapConn(t *testing.T, kex string, hostKey ssh.Signer) (*kexTap, []byte) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		cfg := &ssh.ServerConfig{NoClientAuth: true}
		cfg.KeyExchanges = []string{kex}
		cfg.AddHostKey(hostKey)
		sc, _, _, err := ssh.NewServerConn(c, cfg)
		if err == nil {
			sc.Wait()
		}
		srvErr <- err
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tap := newKexTap(raw)
	cc := &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	cc.KeyExchanges = []string{kex}
	c, _, _, err := ssh.NewClientConn(tap, "x", cc)
	if err != nil {
		t.Fatalf("%s: handshake: %v", kex, err)
	}
	sid := c.SessionID()
	c.Close()
	<-srvErr
	return tap, sid
}

// The tap finds the server's signature over the session ID for every key
// exchange and host key type x/crypto speaks, and refuses any other ID.
func TestKexTapFindsTheSessionSignature(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	var signers []ssh.Signer
	for _, k := range []any{edPriv, ecPriv, rsaPriv} {
		s, err := ssh.NewSignerFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	kexes := []string{"mlkem768x25519-sha256", "curve25519-sha256", "ecdh-sha2-nistp256",
		"ecdh-sha2-nistp521", "diffie-hellman-group14-sha256", "diffie-hellman-group-exchange-sha256"}
	for _, kex := range kexes {
		for _, hk := range signers {
			tap, sid := kexTapConn(t, kex, hk)
			msg, err := tap.sessionBind(sid, true)
			if err != nil {
				t.Errorf("%s/%s: %v", kex, hk.PublicKey().Type(), err)
				continue
			}
			var m bindMsg
			if err := ssh.Unmarshal(msg, &m); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.HostKey, hk.PublicKey().Marshal()) || !bytes.Equal(m.SessionID, sid) || !m.Forwarding {
				t.Errorf("%s/%s: wrong bind message", kex, hk.PublicKey().Type())
			}
			other := bytes.Clone(sid)
			other[0] ^= 1
			if _, err := tap.sessionBind(other, false); err == nil {
				t.Errorf("%s: a signature over another session ID was accepted", kex)
			}
			if !tap.done.Load() {
				t.Errorf("%s: the tap still parses after NEWKEYS", kex)
			}
		}
	}
}

func TestSessionIDOf(t *testing.T) {
	data := ssh.Marshal(struct {
		SID []byte
		Msg byte
	}{[]byte("0123456789abcdef0123456789abcdef"), 50})
	if sid, ok := sessionIDOf(data); !ok || string(sid) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("got %q %v", sid, ok)
	}
	for _, bad := range [][]byte{nil, {0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 9, 1}, {0xff, 0xff, 0xff, 0xff}} {
		if _, ok := sessionIDOf(bad); ok {
			t.Errorf("%x: accepted", bad)
		}
	}
}

// FuzzKexTap: whatever a server sends, split anywhere, the tap neither
// panics nor buffers past its bound.
func FuzzKexTap(f *testing.F) {
	pkt := func(payload ...byte) []byte {
		pad := 4
		b := []byte{0, 0, 0, byte(1 + len(payload) + pad), byte(pad)}
		b = append(b, payload...)
		return append(b, make([]byte, pad)...)
	}
	reply := append([]byte{31}, ssh.Marshal(struct{ A, B, C []byte }{[]byte("k"), []byte("q"), []byte("s")})...)
	f.Add([]byte("SSH-2.0-x\r\n"), 3)
	f.Add(append(append([]byte("junk\nSSH-2.0-x\r\n"), pkt(reply...)...), pkt(21)...), 7)
	f.Add(append([]byte("SSH-2.0-x\n"), 0xff, 0xff, 0xff, 0xff), 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		tap := &kexTap{}
		if split <= 0 {
			split = 1
		}
		for len(data) > 0 {
			n := min(split, len(data))
			tap.feed(data[:n])
			data = data[n:]
			if len(tap.buf) > tapMaxBuffered {
				t.Fatalf("buffered %d bytes", len(tap.buf))
			}
		}
		tap.initial()
		tap.sessionBind(make([]byte, 32), false)
	})
}
