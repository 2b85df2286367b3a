package hostkeys

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// FuzzLoad feeds arbitrary file bytes through the parser and every lookup:
// no panics, and only lines that parse are kept.
func FuzzLoad(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(zeroReader{})
	key, _ := ssh.NewPublicKey(pub)
	k := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n")
	for _, s := range []string{
		"host " + k,
		"*.example,!bad.example " + k + " comment\n# c\n\n",
		"[127.0.0.1]:2222 " + k,
		"@cert-authority * " + k + "\n@revoked * " + k,
		"|1|AAAAAAAAAAAAAAAAAAAAAAAAAAA=|AAAAAAAAAAAAAAAAAAAAAAAAAAA= " + k,
		"@revoked\thost " + k,
		"host ssh-ed25519 AAAA\x00junk",
		"host " + k + "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		db := &DB{now: time.Now}
		db.parse("fuzz", data)
		for _, e := range db.entries {
			if e.key == nil || e.line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
		}
		for _, name := range []string{"host", "[127.0.0.1]:2222", "bad.example", "a.example"} {
			db.Check(name, 22, key)
			db.Check(name, 2222, key)
			db.HostKeyAlgorithms(name, 22, ssh.SupportedAlgorithms().HostKeys)
		}
		db.Skipped()
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
