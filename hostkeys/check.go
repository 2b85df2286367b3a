package hostkeys

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"
)

// Status is the outcome of a host-key check, as OpenSSH's HostStatus.
type Status int

const (
	// Unknown: no line for this host holds the key (HOST_NEW). The caller
	// applies StrictHostKeyChecking (ask, accept-new, yes).
	Unknown Status = iota
	// Known: a line for this host holds the key, or the key is a valid host
	// certificate from a @cert-authority for this host (HOST_OK).
	Known
	// Changed: the host has plain key lines, none holds this key
	// (HOST_CHANGED). As in OpenSSH, a known key of any type counts, not only
	// one of the offered key's type.
	Changed
	// Revoked: the key, or the CA that signed the certificate, is on a
	// @revoked line for this host (HOST_REVOKED), whatever else matches.
	Revoked
	// Invalid: the key is a certificate whose signature does not verify (or
	// there is no key). OpenSSH rejects such a key when parsing it, before
	// any lookup.
	Invalid
)

func (s Status) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Known:
		return "known"
	case Changed:
		return "changed"
	case Revoked:
		return "revoked"
	case Invalid:
		return "invalid"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Match is one known_hosts line that names the host.
type Match struct {
	File   string
	Line   int
	Marker string // "", "@cert-authority" or "@revoked"
	Key    ssh.PublicKey
}

// String is "file:line: [marker ]type SHA256:fingerprint", for messages such
// as OpenSSH's "Offending ECDSA key in file:line".
func (m Match) String() string {
	marker := ""
	if m.Marker != "" {
		marker = m.Marker + " "
	}
	return fmt.Sprintf("%s:%d: %s%s %s", m.File, m.Line, marker, m.Key.Type(), ssh.FingerprintSHA256(m.Key))
}

// Result is what Check decided and why.
type Result struct {
	Status Status
	// Name is the known_hosts name the decision was made under: "name",
	// "[name]:port", or "name" after OpenSSH's port-less retry.
	Name string
	// Found is the deciding line: the key or CA line for Known, the
	// @revoked line for Revoked, the last differing key line for Changed
	// (OpenSSH's "Offending key"). Nil otherwise.
	Found *Match
	// Want is every line that names the host under Name, for the mismatch
	// message.
	Want []Match
	// CertErr says why an offered certificate was not accepted as one (no
	// @cert-authority for the host, expired, wrong principal...). As OpenSSH
	// does, the check then went on with the certificate's plain key, and
	// Status is that check's outcome.
	CertErr error
}

// Check decides whether key is trusted for the host, as OpenSSH's
// check_host_key does. name is the hostname, or the HostKeyAlias when one is
// set; it is lowercased as OpenSSH does. port is the port connected to; pass
// 0 with a HostKeyAlias, since OpenSSH then uses the alias as it is, with no
// "[alias]:port" form.
//
// For a port other than 22 the lookup name is "[name]:port"; when that finds
// nothing, OpenSSH tries the bare name and accepts only an exact key match
// there, and so does Check.
//
// A certificate is Known when a @cert-authority line for the host holds its
// signing key and it is a host certificate, valid now, listing name (without
// the port) among its principals or listing none, signed with an algorithm of
// OpenSSH's default CASignatureAlgorithms. Otherwise, unless it is revoked,
// the certificate's plain key is checked as any key would be.
func (db *DB) Check(name string, port int, key ssh.PublicKey) Result {
	name = lowerASCII(name)
	if key == nil {
		return Result{Status: Invalid, Name: lookupName(name, port), CertErr: errors.New("no host key")}
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		if err := verifyCertSignature(cert); err != nil {
			return Result{Status: Invalid, Name: lookupName(name, port), CertErr: err}
		}
	}
	return db.checkHostKey(name, port, key, false)
}

// checkHostKey follows sshconnect.c check_host_key. quiet is its ROQUIET
// recursion without the port, where only a match counts.
func (db *DB) checkHostKey(name string, port int, key ssh.PublicKey, quiet bool) Result {
	host := lookupName(name, port)
	lines := db.lookup(host)
	var certErr error
	for {
		r := checkKey(lines, key)
		r.Name = host
		r.Want = matches(lines)
		if certErr != nil {
			r.CertErr = certErr
		}
		cert, isCert := key.(*ssh.Certificate)
		switch r.Status {
		case Known:
			if !isCert {
				return r
			}
			if err := db.checkHostCert(cert, name); err != nil {
				certErr = err
				break // to the plain-key retry
			}
			return r
		case Unknown:
			if !quiet && port != 0 && port != 22 {
				// OpenSSH: "checking without port identifier".
				if r2 := db.checkHostKey(name, 0, key, true); r2.Status == Known || r2.Status == Revoked {
					return r2
				}
			}
			if !isCert {
				return r
			}
			certErr = fmt.Errorf("no @cert-authority line for %s holds the certificate's CA key", host)
		case Changed:
			// Only plain keys get here: checkKey never says Changed for a
			// certificate, as hostfile.c does not.
			return r
		case Revoked:
			return r
		}
		// OpenSSH: "No matching CA found. Retry with plain key".
		key = cert.Key
	}
}

// lookup returns the entries whose host field matches host, in file order,
// as load_hostkeys collects them.
func (db *DB) lookup(host string) []*entry {
	var out []*entry
	for i := range db.entries {
		if db.entries[i].matches(host) {
			out = append(out, &db.entries[i])
		}
	}
	return out
}

func matches(lines []*entry) []Match {
	out := make([]Match, 0, len(lines))
	for _, e := range lines {
		out = append(out, e.match())
	}
	return out
}

// checkKey is hostfile.c check_hostkeys_by_key_or_type for a key.
func checkKey(lines []*entry, key ssh.PublicKey) Result {
	cert, isCert := key.(*ssh.Certificate)
	wantMarker := ""
	if isCert {
		wantMarker = markerCA
	}
	r := Result{Status: Unknown}
	for _, e := range lines {
		if e.marker != wantMarker {
			continue
		}
		if isCert {
			if equalPublic(cert.SignatureKey, e.key) {
				r.Status, r.Found = Known, ptr(e.match())
				break
			}
			// A cert whose CA is not among the CA lines: OpenSSH sets no
			// status here (HOST_NEW unless a key line said otherwise).
			continue
		}
		if bytes.Equal(key.Marshal(), e.key.Marshal()) {
			r.Status, r.Found = Known, ptr(e.match())
			break
		}
		r.Status, r.Found = Changed, ptr(e.match())
	}
	if e := revokedBy(lines, key); e != nil {
		r.Status, r.Found = Revoked, ptr(e.match())
	}
	return r
}

// revokedBy is check_key_not_revoked: the key itself (a certificate's plain
// key included) or a certificate's CA on a @revoked line for the host.
func revokedBy(lines []*entry, key ssh.PublicKey) *entry {
	cert, isCert := key.(*ssh.Certificate)
	for _, e := range lines {
		if e.marker != markerRevoked {
			continue
		}
		if equalPublic(key, e.key) || isCert && equalPublic(cert.SignatureKey, e.key) {
			return e
		}
	}
	return nil
}

// equalPublic is sshkey_equal_public: the plain public keys are the same,
// certificates compared by the key they certify.
func equalPublic(a, b ssh.PublicKey) bool {
	return bytes.Equal(plain(a).Marshal(), plain(b).Marshal())
}

func plain(k ssh.PublicKey) ssh.PublicKey {
	if c, ok := k.(*ssh.Certificate); ok {
		return c.Key
	}
	return k
}

func ptr[T any](v T) *T { return &v }

// caSignatureAlgorithms is OpenSSH 9.2's default CASignatureAlgorithms.
var caSignatureAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// CertInvalidError is a host certificate from a trusted CA that
// sshkey_cert_check_host refused: wrong type, outside its validity, a name
// not among its principals, a disallowed signature algorithm. OpenSSH prints
// it ("Certificate invalid: expired") before going on with the plain key.
type CertInvalidError struct{ Reason string }

func (e *CertInvalidError) Error() string { return "certificate invalid: " + e.Reason }

// checkHostCert is sshkey_cert_check_host(cert, name, 0, default
// CASignatureAlgorithms), its checks in its order: a host certificate,
// valid now, with name among its principals or no principals at all, no
// critical options, a CA signature algorithm allowed. The signature was
// verified already.
func (db *DB) checkHostCert(cert *ssh.Certificate, name string) error {
	if cert.CertType != ssh.HostCert {
		return &CertInvalidError{"not a host certificate"}
	}
	now := uint64(db.now().Unix())
	if now < cert.ValidAfter {
		return &CertInvalidError{"not yet valid"}
	}
	if now >= cert.ValidBefore {
		return &CertInvalidError{"expired"}
	}
	if len(cert.ValidPrincipals) > 0 && !slices.Contains(cert.ValidPrincipals, name) {
		return &CertInvalidError{"name is not a listed principal"}
	}
	// No critical option is defined for host certificates: any is refused.
	if len(cert.CriticalOptions) > 0 {
		return &CertInvalidError{"contains unsupported critical options"}
	}
	if cert.Signature == nil || !slices.Contains(caSignatureAlgorithms, cert.Signature.Format) {
		return &CertInvalidError{"signed with disallowed algorithm"}
	}
	return nil
}

// verifyCertSignature checks the CA's signature over the certificate, which
// OpenSSH does when it parses one (x/crypto only in CertChecker.CheckCert,
// which also applies checks OpenSSH does not make for host certificates).
func verifyCertSignature(cert *ssh.Certificate) error {
	if cert.Signature == nil || cert.SignatureKey == nil {
		return errors.New("certificate is not signed")
	}
	if _, ok := cert.SignatureKey.(*ssh.Certificate); ok {
		return errors.New("certificate signed by a certificate")
	}
	c := *cert
	c.Signature = nil
	signed := c.Marshal()
	signed = signed[:len(signed)-4] // the empty signature's length field
	if err := cert.SignatureKey.Verify(signed, cert.Signature); err != nil {
		return errors.New("certificate signature does not verify")
	}
	return nil
}
