package sshproxy

import (
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Partial success (RFC 4252 section 5.1). A server that wants more than one
// credential (sshd's AuthenticationMethods publickey,publickey or
// publickey,password) answers an accepted key with a failure that says
// "partial success". x/crypto then runs the publickey method again from
// its first key; rssh leaves out the keys already accepted, so the next
// identity is offered, as the server would refuse the used one anyway
// (sshd: "refusing previously-used key") and each refusal counts against
// its MaxAuthTries.
//
// x/crypto does not say which key a partial success was for: it is the
// last one that signed, since x/crypto asks the server after each
// signature and returns at once on success or partial success.

// lastSigned remembers which identity signed last.
type lastSigned struct {
	mu    sync.Mutex
	index int
}

func (l *lastSigned) set(i int) {
	l.mu.Lock()
	l.index = i
	l.mu.Unlock()
}

func (l *lastSigned) get() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index
}

// wrap notes s's signatures as identity i's, keeping the AlgorithmSigner
// interface x/crypto needs to pick rsa-sha2-*.
func (l *lastSigned) wrap(s ssh.Signer, i int) ssh.Signer {
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return &notedSigner{AlgorithmSigner: as, noted: l, index: i}
	}
	return &notedPlainSigner{Signer: s, noted: l, index: i}
}

type notedSigner struct {
	ssh.AlgorithmSigner
	noted *lastSigned
	index int
}

var _ ssh.AlgorithmSigner = (*notedSigner)(nil)

func (s *notedSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s.noted.set(s.index)
	return s.AlgorithmSigner.Sign(rand, data)
}

func (s *notedSigner) SignWithAlgorithm(rand io.Reader, data []byte, alg string) (*ssh.Signature, error) {
	s.noted.set(s.index)
	return s.AlgorithmSigner.SignWithAlgorithm(rand, data, alg)
}

type notedPlainSigner struct {
	ssh.Signer
	noted *lastSigned
	index int
}

func (s *notedPlainSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s.noted.set(s.index)
	return s.Signer.Sign(rand, data)
}

// publicKeys is the publickey method over signers (keys[i] is signers[i]'s
// identity, for the log). x/crypto calls it once per round of the method:
// the first round, and one more after each partial success, when the key
// that signed last is the one the server accepted.
func (cl *Client) publicKeys(signers []ssh.Signer, keys []ssh.PublicKey, noted *lastSigned) ssh.AuthMethod {
	used := make([]bool, len(signers))
	rounds := 0
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		if rounds > 0 {
			if i := noted.get(); i >= 0 && i < len(used) && !used[i] {
				used[i] = true
				cl.Log.Debug(fmt.Sprintf("Authenticated using \"publickey\" with partial success (%s %s).",
					keyTypeName(keys[i]), fingerprint(keys[i])))
			}
		}
		rounds++
		var out []ssh.Signer
		for i, s := range signers {
			if !used[i] {
				out = append(out, s)
			}
		}
		return out, nil
	})
}
