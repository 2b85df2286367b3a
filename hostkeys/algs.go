package hostkeys

import (
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

const certSuffix = "-cert-v01@openssh.com"

// plainKeyType is the key type (PublicKey.Type of a plain key) a host-key
// algorithm uses, and whether the algorithm is a certificate one; "" for an
// algorithm this package does not know.
func plainKeyType(alg string) (keyType string, isCert bool) {
	switch alg {
	case ssh.KeyAlgoRSA, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
		return ssh.KeyAlgoRSA, false
	case ssh.CertAlgoRSAv01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSASHA512v01:
		return ssh.KeyAlgoRSA, true
	case ssh.CertAlgoSKED25519v01:
		return ssh.KeyAlgoSKED25519, true
	case ssh.CertAlgoSKECDSA256v01:
		return ssh.KeyAlgoSKECDSA256, true
	case "webauthn-sk-ecdsa-sha2-nistp256@openssh.com":
		return ssh.KeyAlgoSKECDSA256, false
	}
	if t, ok := strings.CutSuffix(alg, certSuffix); ok {
		return t, true
	}
	return alg, false
}

// HostKeyAlgorithms orders supported (the client's host-key algorithms in
// preference order, such as x/crypto's SupportedAlgorithms().HostKeys) the
// way OpenSSH's order_hostkeyalgs does, so the server is asked for a key the
// known_hosts files can vouch for: a host known by its ECDSA key must not be
// offered Ed25519 first and then reported as changed.
//
// The lookup name is "[name]:port" for a port other than 22 (pass port 0
// with a HostKeyAlias), with no port-less retry, as in OpenSSH. When no line
// names the host it returns nil and the caller keeps its own order. When a
// plain key of the first algorithm's type is known, supported is returned
// as it is. Otherwise the algorithms whose key type has a plain key line for
// the host (an ssh-rsa line stands for rsa-sha2-512, rsa-sha2-256 and
// ssh-rsa, whichever supported holds), and every certificate algorithm when
// the host has a @cert-authority line, come first, each group keeping the
// order of supported.
//
// Pass the resolved HostKeyAlgorithms (ssh -G order, limited to what
// x/crypto implements) for OpenSSH's order: x/crypto's own
// SupportedAlgorithms().HostKeys starts with RSA certificates and puts
// rsa-sha2-256 before rsa-sha2-512. OpenSSH reorders only when
// HostKeyAlgorithms is not set in its configuration, or only changed with a
// leading +, - or ^; the caller decides that.
func (db *DB) HostKeyAlgorithms(name string, port int, supported []string) []string {
	lines := db.lookup(lookupName(lowerASCII(name), port))
	if len(lines) == 0 || len(supported) == 0 {
		return nil
	}
	hasCA := false
	known := map[string]bool{}
	for _, e := range lines {
		switch e.marker {
		case markerCA:
			hasCA = true
		case "":
			known[e.key.Type()] = true
		}
	}
	if t, _ := plainKeyType(supported[0]); known[t] {
		return slices.Clone(supported)
	}
	var first, last []string
	for _, alg := range supported {
		t, isCert := plainKeyType(alg)
		if isCert && hasCA || known[t] {
			first = append(first, alg)
		} else {
			last = append(last, alg)
		}
	}
	return append(first, last...)
}
