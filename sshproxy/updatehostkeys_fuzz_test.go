package sshproxy

import (
	"io"
	"log/slog"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/testenv"
)

// FuzzHostKeysAnnouncement feeds arbitrary hostkeys-00@openssh.com payloads
// (the server's, so anyone's) to the parser: it must never panic, and
// what it keeps must be plain keys HostKeyAlgorithms accepts, each once.
func FuzzHostKeysAnnouncement(f *testing.F) {
	k1, k2 := testenv.NewPublicKey(f), testenv.NewPublicKey(f)
	f.Add(appendSSHString(appendSSHString(nil, k1.Marshal()), k2.Marshal()))
	f.Add(appendSSHString(appendSSHString(nil, k1.Marshal()), k1.Marshal()))
	f.Add(appendSSHString(nil, []byte("junk")))
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Add([]byte{})
	u := &hostKeyUpdate{
		cl:  &Client{Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		cfg: &config.Config{HostKeyAlgorithms: []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := u.parseHostKeys(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if _, ok := k.(*ssh.Certificate); ok {
				t.Fatalf("kept a certificate")
			}
			if !acceptedByHostKeyAlgorithms(k, u.cfg.HostKeyAlgorithms) {
				t.Fatalf("kept %s, not in HostKeyAlgorithms", k.Type())
			}
			if seen[string(k.Marshal())] {
				t.Fatalf("kept a key twice")
			}
			seen[string(k.Marshal())] = true
		}
	})
}
