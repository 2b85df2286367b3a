package sshproxy

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

// PubkeyAcceptedAlgorithms as OpenSSH applies it to one identity: a key
// type not listed is not offered; an RSA key signs with the listed RSA
// algorithms only, in the list's order.
func TestAcceptedSigner(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, _ := ssh.NewSignerFromKey(rk)
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	edSigner, _ := ssh.NewSignerFromKey(ek)
	for _, c := range []struct {
		name     string
		s        ssh.Signer
		accepted []string
		want     []string // nil: not offered; for RSA the signature algorithms
	}{
		{"ed25519 listed", edSigner, []string{"ssh-ed25519"}, []string{"ssh-ed25519"}},
		{"ed25519 not listed", edSigner, []string{"rsa-sha2-512"}, nil},
		{"rsa, default order", rsaSigner, []string{"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"}, []string{"rsa-sha2-512", "rsa-sha2-256"}},
		{"rsa, 256 first", rsaSigner, []string{"rsa-sha2-256", "rsa-sha2-512"}, []string{"rsa-sha2-256", "rsa-sha2-512"}},
		{"rsa, ssh-rsa only", rsaSigner, []string{"ssh-rsa"}, []string{"ssh-rsa"}},
		{"rsa, certificates only", rsaSigner, []string{"rsa-sha2-512-cert-v01@openssh.com"}, nil},
		{"rsa not listed", rsaSigner, []string{"ssh-ed25519"}, nil},
	} {
		got := acceptedSigner(guardSigner(c.s), c.accepted)
		switch {
		case c.want == nil && got != nil:
			t.Errorf("%s: offered, want skipped", c.name)
		case c.want != nil && got == nil:
			t.Errorf("%s: skipped, want offered", c.name)
		case got != nil && c.s == rsaSigner:
			ms, ok := got.(ssh.MultiAlgorithmSigner)
			if !ok || !slices.Equal(ms.Algorithms(), c.want) {
				t.Errorf("%s: algorithms %v, want %v", c.name, got, c.want)
			}
		}
	}
}
