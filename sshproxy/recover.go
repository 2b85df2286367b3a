package sshproxy

import (
	"io"
	"net"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/crash"
)

// Every callback x/crypto runs — some on goroutines of its own, such as the
// host-key check on the key-exchange goroutine — defers crash.Recover, so a
// panic in one ends rssh with its internal-error line, the terminal restored
// and exit 255, never with a Go trace. Channel and request handlers run
// under crash.Go, which does the same.

// Callback kinds, as testPanicIn names them.
const (
	cbHostKey        = "hostkey"
	cbBanner         = "banner"
	cbSign           = "sign"
	cbKeyboard       = "keyboard-interactive"
	cbPassword       = "password"
	cbAgentChannel   = "agent-channel"
	cbForwardChannel = "forwarded-channel"
)

// testPanicIn is a test seam: when set, each callback calls it with its
// kind first, and a test panics there. Nil in the shipped binary.
var testPanicIn func(kind string)

func enter(kind string) {
	if testPanicIn != nil {
		testPanicIn(kind)
	}
}

func guardHostKey(cb ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		defer crash.Recover()
		enter(cbHostKey)
		return cb(hostname, remote, key)
	}
}

func guardBanner(cb ssh.BannerCallback) ssh.BannerCallback {
	return func(msg string) error {
		defer crash.Recover()
		enter(cbBanner)
		return cb(msg)
	}
}

// guardedSigner is a signer whose signing recovers. It keeps the
// AlgorithmSigner interface, which x/crypto needs to pick rsa-sha2-*.
type guardedSigner struct{ s ssh.AlgorithmSigner }

var _ ssh.AlgorithmSigner = guardedSigner{}

func (g guardedSigner) PublicKey() ssh.PublicKey { return g.s.PublicKey() }

func (g guardedSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	defer crash.Recover()
	enter(cbSign)
	return g.s.Sign(rand, data)
}

func (g guardedSigner) SignWithAlgorithm(rand io.Reader, data []byte, alg string) (*ssh.Signature, error) {
	defer crash.Recover()
	enter(cbSign)
	return g.s.SignWithAlgorithm(rand, data, alg)
}

// guardSigner wraps s so its signing recovers, keeping what x/crypto looks
// for: an AlgorithmSigner stays one, a plain Signer (none of rssh's) signs
// with its key's own algorithm only.
func guardSigner(s ssh.Signer) ssh.Signer {
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return guardedSigner{as}
	}
	return guardedPlainSigner{s}
}

type guardedPlainSigner struct{ s ssh.Signer }

func (g guardedPlainSigner) PublicKey() ssh.PublicKey { return g.s.PublicKey() }

func (g guardedPlainSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	defer crash.Recover()
	enter(cbSign)
	return g.s.Sign(rand, data)
}
