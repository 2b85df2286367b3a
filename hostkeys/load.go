package hostkeys

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// maxFileSize refuses a known_hosts file larger than this rather than
	// reading part of it (a missed @revoked line would be worse than an error).
	maxFileSize = 64 << 20
	// maxLineLen skips longer lines; a 16384-bit RSA key is under 3 KiB.
	maxLineLen = 64 << 10
	// maxSkipped bounds the diagnostics kept per DB.
	maxSkipped = 1000
)

const (
	markerCA      = "@cert-authority"
	markerRevoked = "@revoked"
)

// entry is one valid known_hosts line.
type entry struct {
	file   string
	line   int
	marker string        // "", markerCA or markerRevoked
	hosts  string        // the host field as written (patterns)
	hashed *hashedHost   // non-nil when hosts is |1|salt|hash
	key    ssh.PublicKey // as written; may be a certificate
}

func (e *entry) matches(host string) bool {
	if e.hashed != nil {
		return e.hashed.match(host)
	}
	return matchPatternList(host, e.hosts)
}

func (e *entry) match() Match {
	return Match{File: e.file, Line: e.line, Marker: e.marker, Key: e.key}
}

// DB holds the valid lines of the known_hosts files given to Load, in order.
// It is read-only after Load and safe for concurrent use.
type DB struct {
	entries []entry
	skipped []string
	now     func() time.Time // test seam for certificate validity
}

// Load reads known_hosts files in order, as OpenSSH reads UserKnownHostsFile
// then GlobalKnownHostsFile. A file that is missing or cannot be opened is
// skipped, as OpenSSH does; so is a line that does not parse (each noted in
// Skipped). A file larger than 64 MiB, or one that fails mid-read, is an
// error: reading only part of it could miss a @revoked line.
func Load(files ...string) (*DB, error) {
	db := &DB{now: time.Now}
	for _, name := range files {
		data, err := readBounded(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("known hosts file %s: %w", name, err)
		}
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) && pe.Op == "open" {
				// OpenSSH: fopen failure is a debug line, not an error.
				db.skip(name, 0, err.Error())
				continue
			}
			return nil, fmt.Errorf("known hosts file %s: %w", name, err)
		}
		db.parse(name, data)
	}
	return db, nil
}

var errTooLarge = fmt.Errorf("larger than %d bytes", maxFileSize)

// WithLines returns a DB holding db's lines and then the valid known_hosts
// lines of data, recorded as coming from source: the output of OpenSSH's
// KnownHostsCommand, which is read after the files. db is not changed.
func (db *DB) WithLines(source string, data []byte) *DB {
	out := &DB{entries: slices.Clone(db.entries), skipped: slices.Clone(db.skipped), now: db.now}
	out.parse(source, data)
	return out
}

func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		// fopen succeeds on a directory and getline fails at once: no lines.
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

// Skipped lists what Load passed over, as "file:line: why" (or "file: why"
// for a file that could not be opened), for -vvv diagnostics.
func (db *DB) Skipped() []string {
	return append([]string(nil), db.skipped...)
}

func (db *DB) skip(file string, line int, why string) {
	if len(db.skipped) >= maxSkipped {
		return
	}
	if len(db.skipped) == maxSkipped-1 {
		db.skipped = append(db.skipped, "(further skipped lines not listed)")
		return
	}
	if line == 0 {
		db.skipped = append(db.skipped, fmt.Sprintf("%s: %s", file, why))
		return
	}
	db.skipped = append(db.skipped, fmt.Sprintf("%s:%d: %s", file, line, why))
}

// parse adds the valid lines of one file, following hostkeys_foreach.
func (db *DB) parse(file string, data []byte) {
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if len(line) > maxLineLen {
			db.skip(file, n, "line too long")
			continue
		}
		// C string handling: a NUL ends the line.
		if i := bytes.IndexByte(line, 0); i >= 0 {
			line = line[:i]
		}
		e, err := parseLine(string(line))
		if err != nil {
			db.skip(file, n, err.Error())
			continue
		}
		if e == nil {
			continue // blank or comment
		}
		e.file, e.line = file, n
		db.entries = append(db.entries, *e)
	}
}

func skipBlank(s string) string {
	return strings.TrimLeft(s, " \t")
}

// parseLine parses one line; nil, nil for a blank line or comment.
func parseLine(s string) (*entry, error) {
	s = skipBlank(s)
	if s == "" || s[0] == '#' {
		return nil, nil
	}
	marker, s, err := parseMarker(s)
	if err != nil {
		return nil, err
	}
	end := strings.IndexAny(s, " \t")
	if end < 0 {
		end = len(s)
	}
	e := &entry{marker: marker, hosts: s[:end]}
	s = skipBlank(s[end:])
	if strings.HasPrefix(e.hosts, "|") {
		if e.hashed, err = parseHashed(e.hosts); err != nil {
			return nil, err
		}
	}
	if s == "" || s[0] == '#' {
		return nil, errors.New("truncated before key type")
	}
	if e.key, err = parseKey(s); err != nil {
		return nil, err
	}
	return e, nil
}

// parseMarker is OpenSSH's check_markers, quirks included: the marker ends at
// the first space in the rest of the line, or failing that the first tab.
func parseMarker(s string) (marker, rest string, err error) {
	for len(s) > 0 && s[0] == '@' {
		if marker != "" {
			return "", "", errors.New("more than one marker")
		}
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			sp = strings.IndexByte(s, '\t')
		}
		if sp <= 1 || sp >= 32 {
			return "", "", errors.New("invalid marker")
		}
		switch s[:sp] {
		case markerCA, markerRevoked:
			marker = s[:sp]
		default:
			return "", "", fmt.Errorf("unknown marker %q", s[:sp])
		}
		s = skipBlank(s[sp:])
	}
	return marker, s, nil
}

// keyTypes maps the key type names OpenSSH 9.2 accepts on a known_hosts line
// to the type the blob must have. Short names ("ED25519", "RSA") are not
// accepted: ssh-keygen -F skips such lines.
var keyTypes = map[string]string{
	ssh.KeyAlgoRSA:                                ssh.KeyAlgoRSA,
	ssh.KeyAlgoRSASHA256:                          ssh.KeyAlgoRSA,
	ssh.KeyAlgoRSASHA512:                          ssh.KeyAlgoRSA,
	ssh.InsecureKeyAlgoDSA:                        ssh.InsecureKeyAlgoDSA,
	ssh.KeyAlgoECDSA256:                           ssh.KeyAlgoECDSA256,
	ssh.KeyAlgoECDSA384:                           ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521:                           ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoED25519:                            ssh.KeyAlgoED25519,
	ssh.KeyAlgoSKED25519:                          ssh.KeyAlgoSKED25519,
	ssh.KeyAlgoSKECDSA256:                         ssh.KeyAlgoSKECDSA256,
	"webauthn-sk-ecdsa-sha2-nistp256@openssh.com": ssh.KeyAlgoSKECDSA256,

	ssh.CertAlgoRSAv01:         ssh.CertAlgoRSAv01,
	ssh.CertAlgoRSASHA256v01:   ssh.CertAlgoRSAv01,
	ssh.CertAlgoRSASHA512v01:   ssh.CertAlgoRSAv01,
	ssh.InsecureCertAlgoDSAv01: ssh.InsecureCertAlgoDSAv01,
	ssh.CertAlgoECDSA256v01:    ssh.CertAlgoECDSA256v01,
	ssh.CertAlgoECDSA384v01:    ssh.CertAlgoECDSA384v01,
	ssh.CertAlgoECDSA521v01:    ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoED25519v01:     ssh.CertAlgoED25519v01,
	ssh.CertAlgoSKED25519v01:   ssh.CertAlgoSKED25519v01,
	ssh.CertAlgoSKECDSA256v01:  ssh.CertAlgoSKECDSA256v01,
}

// parseKey is OpenSSH's sshkey_read: "type base64 [comment]", the blob's type
// must be the one named.
func parseKey(s string) (ssh.PublicKey, error) {
	sp := strings.IndexAny(s, " \t")
	if sp < 0 {
		return nil, errors.New("no key after key type")
	}
	name := s[:sp]
	want, ok := keyTypes[name]
	if !ok {
		return nil, fmt.Errorf("unknown key type %.40q", name)
	}
	s = skipBlank(s[sp:])
	if s == "" {
		return nil, errors.New("no key after key type")
	}
	if end := strings.IndexAny(s, " \t"); end >= 0 {
		s = s[:end]
	}
	blob, err := decodeB64(s)
	if err != nil {
		return nil, errors.New("key is not valid base64")
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("bad key: %w", err)
	}
	if key.Type() != want {
		return nil, fmt.Errorf("key type %s does not match the %s named", key.Type(), name)
	}
	if err := checkKeySize(key); err != nil {
		return nil, err
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		// OpenSSH verifies a certificate's signature when it parses one.
		if err := verifyCertSignature(cert); err != nil {
			return nil, err
		}
	}
	return key, nil
}

// errKeyLength is OpenSSH's SSH_ERR_KEY_LENGTH.
var errKeyLength = errors.New("invalid key length")

// checkKeySize applies OpenSSH's RSA modulus bounds (1024 to 16384 bits),
// which x/crypto does not check when parsing.
func checkKeySize(key ssh.PublicKey) error {
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key
	}
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return nil
	}
	if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok {
		if n := rk.N.BitLen(); n < 1024 || n > 16384 {
			return fmt.Errorf("%w: RSA key of %d bits is outside 1024..16384", errKeyLength, n)
		}
	}
	return nil
}
