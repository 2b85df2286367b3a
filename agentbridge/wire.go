package agentbridge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Agent protocol message numbers (draft-miller-ssh-agent, OpenSSH's
// PROTOCOL.agent). The v1 numbers are listed only to name them in refusals.
const (
	msgRSAIdentitiesRequest   = 1 // v1
	msgRSAChallenge           = 3 // v1
	msgFailure                = 5
	msgSuccess                = 6
	msgAddRSAIdentity         = 7 // v1
	msgRemoveRSAIdentity      = 8 // v1
	msgRemoveAllRSAIdentities = 9 // v1
	msgRequestIdentities      = 11
	msgIdentitiesAnswer       = 12
	msgSignRequest            = 13
	msgSignResponse           = 14
	msgAddIdentity            = 17
	msgRemoveIdentity         = 18
	msgRemoveAllIdentities    = 19
	msgAddSmartcardKey        = 20
	msgRemoveSmartcardKey     = 21
	msgLock                   = 22
	msgUnlock                 = 23
	msgAddRSAIDConstrained    = 24 // v1
	msgAddIDConstrained       = 25
	msgAddSmartcardKeyConstr  = 26
	msgExtension              = 27
	msgExtensionFailure       = 28

	sessionBindExtension = "session-bind@openssh.com"

	// maxSessionID is OpenSSH's AGENT_MAX_SID_LEN: a session identifier is
	// an exchange hash, at most SHA-512's 64 bytes.
	maxSessionID = 128
	// maxExtensionName bounds what an audit line repeats of a peer's
	// extension name.
	maxExtensionName = 64

	sshMsgUserauthRequest = 50
)

// opName names a request type for audit lines.
func opName(t byte) string {
	switch t {
	case msgRequestIdentities:
		return "list"
	case msgSignRequest:
		return "sign"
	case msgExtension:
		return "extension"
	case msgAddIdentity, msgAddIDConstrained:
		return "add"
	case msgRemoveIdentity:
		return "remove"
	case msgRemoveAllIdentities:
		return "remove-all"
	case msgAddSmartcardKey, msgAddSmartcardKeyConstr:
		return "add-smartcard"
	case msgRemoveSmartcardKey:
		return "remove-smartcard"
	case msgLock:
		return "lock"
	case msgUnlock:
		return "unlock"
	case msgRSAIdentitiesRequest, msgRSAChallenge, msgAddRSAIdentity, msgRemoveRSAIdentity,
		msgRemoveAllRSAIdentities, msgAddRSAIDConstrained:
		return fmt.Sprintf("v1-%d", t)
	}
	return fmt.Sprintf("type-%d", t)
}

var (
	errEmptyMessage = errors.New("empty message")
	errMalformed    = errors.New("malformed message")
)

// tooLargeError is a length prefix over the cap; it is reported before
// anything is allocated for it.
type tooLargeError struct{ n, max uint32 }

func (e tooLargeError) Error() string {
	return fmt.Sprintf("message of %d bytes exceeds the %d-byte cap", e.n, e.max)
}

// readMessage reads one length-prefixed message, refusing lengths over max
// before allocating the body.
func readMessage(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, errEmptyMessage
	}
	if uint64(n) > uint64(max) {
		return nil, tooLargeError{n, uint32(max)}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// frame prefixes msg with its length, so one Write sends it whole.
func frame(msg []byte) []byte {
	out := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(out, uint32(len(msg)))
	copy(out[4:], msg)
	return out
}

// reader takes SSH wire types off a byte slice; every read checks the
// remaining length first and a short read sets ok to false for good.
type reader struct {
	b  []byte
	ok bool
}

func newReader(b []byte) *reader { return &reader{b: b, ok: true} }

func (r *reader) byte() byte {
	if !r.ok || len(r.b) < 1 {
		r.ok = false
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uint32() uint32 {
	if !r.ok || len(r.b) < 4 {
		r.ok = false
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// string returns a sub-slice of the message, not a copy.
func (r *reader) string() []byte {
	n := r.uint32()
	if !r.ok || uint64(n) > uint64(len(r.b)) {
		r.ok = false
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) bool() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.ok = false
	return false
}

// done reports whether everything parsed and nothing trails.
func (r *reader) done() bool { return r.ok && len(r.b) == 0 }

// signRequest is SSH_AGENTC_SIGN_REQUEST.
type signRequest struct {
	keyBlob, data []byte
	flags         uint32
}

func parseSignRequest(msg []byte) (signRequest, error) {
	r := newReader(msg[1:])
	req := signRequest{keyBlob: r.string(), data: r.string(), flags: r.uint32()}
	if !r.done() {
		return signRequest{}, fmt.Errorf("sign request: %w", errMalformed)
	}
	return req, nil
}

// sessionBind is the session-bind@openssh.com extension: ssh tells its agent
// which server (host key) it is authenticating to, and in which session.
type sessionBind struct {
	hostKey    []byte
	sessionID  []byte
	signature  []byte
	forwarding bool
}

// parseExtension splits an SSH_AGENTC_EXTENSION into its name and contents.
func parseExtension(msg []byte) (name string, contents []byte, err error) {
	r := newReader(msg[1:])
	n := r.string()
	if !r.ok {
		return "", nil, fmt.Errorf("extension: %w", errMalformed)
	}
	return string(n), r.b, nil
}

func parseSessionBind(contents []byte) (sessionBind, error) {
	r := newReader(contents)
	b := sessionBind{hostKey: r.string(), sessionID: r.string(), signature: r.string(), forwarding: r.bool()}
	if !r.done() {
		return sessionBind{}, fmt.Errorf("session-bind: %w", errMalformed)
	}
	return b, nil
}

// verify checks that the host key signed the session identifier, as the
// server does in its key exchange. The upstream agent checks it too; the
// bridge checks it itself so that its policy does not rest on an agent it
// does not know.
func (b sessionBind) verify() error {
	if len(b.sessionID) == 0 || len(b.sessionID) > maxSessionID {
		return fmt.Errorf("session identifier of %d bytes", len(b.sessionID))
	}
	key, err := ssh.ParsePublicKey(b.hostKey)
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	if _, isCert := key.(*ssh.Certificate); isCert {
		return errors.New("host key is a certificate")
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(b.signature, &sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if err := key.Verify(b.sessionID, &sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return nil
}

// userauthRequest is the part of an SSH_MSG_USERAUTH_REQUEST for
// "publickey" that a client asks its agent to sign (RFC 4252 section 7,
// and OpenSSH's publickey-hostbound-v00@openssh.com, which appends the
// server's host key).
type userauthRequest struct {
	sessionID, user, keyBlob, hostKey []byte
}

// parseUserauthRequest reads sign request data as a publickey
// authentication request, as ssh-agent's parse_userauth_request does.
func parseUserauthRequest(data []byte) (userauthRequest, error) {
	r := newReader(data)
	var u userauthRequest
	u.sessionID = r.string()
	if r.byte() != sshMsgUserauthRequest {
		return u, errors.New("not a user-authentication request")
	}
	u.user = r.string()
	service := r.string()
	method := string(r.string())
	hasSig := r.bool()
	r.string() // algorithm
	u.keyBlob = r.string()
	switch method {
	case "publickey":
	case "publickey-hostbound-v00@openssh.com":
		u.hostKey = r.string()
	default:
		return u, errors.New("not a publickey user-authentication request")
	}
	if !r.done() || !hasSig || string(service) != "ssh-connection" {
		return u, errors.New("not a publickey user-authentication request")
	}
	return u, nil
}

// identity is one key of an SSH_AGENT_IDENTITIES_ANSWER.
type identity struct{ blob, comment []byte }

// parseIdentities reads an identities answer. The count is checked against
// the bytes left (each key needs at least two 4-byte lengths) before
// anything is allocated for it.
func parseIdentities(msg []byte) ([]identity, error) {
	r := newReader(msg[1:])
	n := r.uint32()
	if !r.ok || uint64(n) > uint64(len(r.b)/8) {
		return nil, fmt.Errorf("identities answer: %w", errMalformed)
	}
	ids := make([]identity, 0, n)
	for i := uint32(0); i < n; i++ {
		ids = append(ids, identity{blob: r.string(), comment: r.string()})
	}
	if !r.done() {
		return nil, fmt.Errorf("identities answer: %w", errMalformed)
	}
	return ids, nil
}

func marshalIdentities(ids []identity) []byte {
	size := 5
	for _, id := range ids {
		size += 8 + len(id.blob) + len(id.comment)
	}
	out := make([]byte, 0, size)
	out = append(out, msgIdentitiesAnswer)
	out = binary.BigEndian.AppendUint32(out, uint32(len(ids)))
	for _, id := range ids {
		out = appendString(out, id.blob)
		out = appendString(out, id.comment)
	}
	return out
}

func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// fingerprint is OpenSSH's SHA256:… form of a wire-format key blob, the same
// as ssh.FingerprintSHA256 of the parsed key, without having to parse it (an
// agent may hold key types x/crypto does not know).
func fingerprint(blob []byte) string {
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// keyFingerprints are the fingerprints a key blob answers to in
// --allow-key: its own, and for a certificate also its key's, so allowing
// a key also allows certificates for it.
func keyFingerprints(blob []byte) []string {
	fps := []string{fingerprint(blob)}
	r := newReader(blob)
	if t := string(r.string()); r.ok && strings.HasSuffix(t, "-cert-v01@openssh.com") {
		if k, err := ssh.ParsePublicKey(blob); err == nil {
			if c, ok := k.(*ssh.Certificate); ok {
				fps = append(fps, ssh.FingerprintSHA256(c.Key))
			}
		}
	}
	return fps
}
