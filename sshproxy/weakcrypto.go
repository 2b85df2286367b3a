package sshproxy

import (
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
)

// pqKex are the key exchanges OpenSSH 10.1 counts as post-quantum
// (kex-names.c, KEX_IS_PQ). x/crypto implements mlkem768x25519-sha256 only,
// so a server that offers sntrup761x25519 but not ML-KEM (OpenSSH 9.0 to
// 9.8) ends up on curve25519 with rssh.
var pqKex = map[string]bool{
	"mlkem768x25519-sha256":              true,
	"sntrup761x25519-sha512":             true,
	"sntrup761x25519-sha512@openssh.com": true,
}

// weakKexWarning is OpenSSH 10.1's warn_nonpq_kex (sshconnect.c), word
// for word, so what people search for finds it.
var weakKexWarning = []string{
	"** WARNING: connection is not using a post-quantum key exchange algorithm.",
	"** This session may be vulnerable to \"store now, decrypt later\" attacks.",
	"** The server may need to be upgraded. See https://openssh.com/pq.html",
}

// warnWeakKex arranges for the warning OpenSSH 10.1 prints after key
// exchange, before authentication, when the negotiated key exchange is
// not post-quantum: unless WarnWeakCrypto is off, or KexAlgorithms was set
// (the user chose), as ssh. The negotiated algorithm is known from the
// first authentication callback; the returned func covers a server that
// needed no authentication, and is called once the handshake is done.
func (cl *Client) warnWeakKex(cc *ssh.ClientConfig, cfg *config.Config) func(ssh.Conn) {
	if !cfg.WarnWeakCrypto || cfg.IsSet("kexalgorithms") {
		return func(ssh.Conn) {}
	}
	var once sync.Once
	check := func(kex string) {
		once.Do(func() {
			if kex == "" || pqKex[kex] {
				return
			}
			for _, l := range weakKexWarning {
				cl.Log.Info(l) // logit: shown at INFO and above, as ssh
			}
		})
	}
	prev := cc.AuthCallback
	cc.AuthCallback = func(ctx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
		check(ctx.Algorithms.KeyExchange)
		if prev != nil {
			return prev(ctx)
		}
		return nil, nil
	}
	return func(c ssh.Conn) {
		if m, ok := c.(ssh.AlgorithmsConnMetadata); ok {
			check(m.Algorithms().KeyExchange)
		}
	}
}
