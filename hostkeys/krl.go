package hostkeys

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"golang.org/x/crypto/ssh"
)

// RevokedKeys is a RevokedHostKeys file as OpenSSH's sshkey_check_revoked reads
// it: an OpenSSH key revocation list (PROTOCOL.krl) when it starts with the
// KRL magic, otherwise a list of public keys, one a line.
type RevokedKeys struct {
	path string
	krl  *KRL
	flat []byte // the key list, scanned at each check as sshkey_in_file does
}

// LoadRevoked reads a RevokedHostKeys file. As in OpenSSH, a file that
// cannot be read, a KRL that does not parse, or a KRL whose signature does
// not verify is an error, and the caller must refuse the host: a
// revocation list that cannot be read revokes nothing it should.
func LoadRevoked(path string) (*RevokedKeys, error) {
	data, err := readBounded(path)
	if fi, serr := os.Stat(path); err == nil && serr == nil && fi.IsDir() {
		err = errors.New("is a directory")
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("revoked keys file %s: %w", path, err)
	}
	r := &RevokedKeys{path: path}
	if bytes.HasPrefix(data, []byte(krlMagic)) {
		if r.krl, err = ParseKRL(data); err != nil {
			return nil, fmt.Errorf("revoked keys file %s: %w", path, err)
		}
		return r, nil
	}
	r.flat = data
	return r, nil
}

// Path is the file the list was read from.
func (r *RevokedKeys) Path() string { return r.path }

// Check reports whether key is revoked: for a KRL, ssh_krl_check_key (the
// key, its plain key for a certificate, the certificate's serial or key ID
// under its CA, and the CA key itself); for a key list, a line holding the
// key or, for a certificate, its CA. A key list line that does not parse
// before a match is an error, as sshkey_in_file makes it.
func (r *RevokedKeys) Check(key ssh.PublicKey) (bool, error) {
	if key == nil {
		return false, errors.New("no key")
	}
	if r.krl != nil {
		return r.krl.IsRevoked(key), nil
	}
	cert, isCert := key.(*ssh.Certificate)
	data := r.flat
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if i := bytes.IndexByte(line, 0); i >= 0 {
			line = line[:i]
		}
		s := skipBlank(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		if len(s) > maxLineLen {
			return false, fmt.Errorf("revoked keys file %s:%d: line too long", r.path, n)
		}
		pub, err := parseKey(s)
		if errors.Is(err, errKeyLength) {
			continue // sshkey_in_file skips SSH_ERR_KEY_LENGTH
		}
		if err != nil {
			return false, fmt.Errorf("revoked keys file %s:%d: %v", r.path, n, err)
		}
		if equalPublic(key, pub) || isCert && equalPublic(cert.SignatureKey, pub) {
			return true, nil
		}
	}
	return false, nil
}

// krlMagic starts every KRL ("SSHKRL\n\0").
const krlMagic = "SSHKRL\n\x00"

const (
	krlFormatVersion = 1

	krlSectionCertificates = 1
	krlSectionExplicitKey  = 2
	krlSectionSHA1         = 3
	krlSectionSignature    = 4
	krlSectionSHA256       = 5

	krlCertSerialList   = 0x20
	krlCertSerialRange  = 0x21
	krlCertSerialBitmap = 0x22
	krlCertKeyID        = 0x23

	// maxBignumBytes is SSH_MAX_BIGNUM_BYTES, which bounds a serial bitmap.
	maxBignumBytes = (16384 + 7) / 8
)

// KRL is a parsed OpenSSH key revocation list. Every section of
// PROTOCOL.krl is understood: explicit keys, SHA1 and SHA256 fingerprints,
// certificates by serial (list, range, bitmap) and key ID under a CA or
// any CA, and signatures, which are verified.
type KRL struct {
	Version uint64 // krl_version
	Comment string

	keys    map[string]bool // plain public key blobs
	sha1s   map[[sha1.Size]byte]bool
	sha256s map[[sha256.Size]byte]bool
	certs   []*krlCerts
	signers []ssh.PublicKey
}

// krlCerts is one CA's revoked certificates; ca is nil for "any CA".
type krlCerts struct {
	ca      []byte
	ranges  [][2]uint64
	bitmaps []krlBitmap
	keyIDs  map[string]bool
}

type krlBitmap struct {
	offset uint64
	bits   []byte // big-endian, no leading zero byte
}

func (b krlBitmap) has(serial uint64) bool {
	if serial < b.offset {
		return false
	}
	i := serial - b.offset
	if i >= uint64(len(b.bits))*8 {
		return false
	}
	return b.bits[len(b.bits)-1-int(i/8)]>>(i%8)&1 == 1
}

// krlReader reads SSH wire types from a bounded buffer; every length is
// checked against what is left before it is used.
type krlReader struct{ b []byte }

var errKRLShort = errors.New("KRL truncated")

func (r *krlReader) u8() (byte, error) {
	if len(r.b) < 1 {
		return 0, errKRLShort
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v, nil
}

func (r *krlReader) u32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, errKRLShort
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *krlReader) u64() (uint64, error) {
	if len(r.b) < 8 {
		return 0, errKRLShort
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v, nil
}

func (r *krlReader) str() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)) {
		return nil, errKRLShort
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v, nil
}

// cstr is sshbuf_get_cstring: a NUL is allowed only as the last byte.
func (r *krlReader) cstr() (string, error) {
	v, err := r.str()
	if err != nil {
		return "", err
	}
	if i := bytes.IndexByte(v, 0); i >= 0 {
		if i != len(v)-1 {
			return "", errors.New("KRL string holds a NUL")
		}
		v = v[:i]
	}
	return string(v), nil
}

// mpint is sshbuf_get_bignum2_bytes_direct: not negative, at most
// SSH_MAX_BIGNUM_BYTES (plus a zero sign byte), leading zeros dropped.
func (r *krlReader) mpint() ([]byte, error) {
	v, err := r.str()
	if err != nil {
		return nil, err
	}
	if len(v) > 0 && v[0]&0x80 != 0 {
		return nil, errors.New("KRL bitmap is negative")
	}
	if len(v) > maxBignumBytes+1 || len(v) == maxBignumBytes+1 && v[0] != 0 {
		return nil, errors.New("KRL bitmap too large")
	}
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	return v, nil
}

// ParseKRL parses a KRL as ssh_krl_from_blob does with no required signing
// CA: a signature section, when present, must verify over the KRL before
// it, and not every signing key may be revoked by the KRL itself.
func ParseKRL(data []byte) (*KRL, error) {
	if !bytes.HasPrefix(data, []byte(krlMagic)) {
		return nil, errors.New("not a KRL")
	}
	r := &krlReader{b: data[len(krlMagic):]}
	k := &KRL{keys: map[string]bool{}, sha1s: map[[sha1.Size]byte]bool{}, sha256s: map[[sha256.Size]byte]bool{}}
	v, err := r.u32()
	if err != nil {
		return nil, err
	}
	if v != krlFormatVersion {
		return nil, fmt.Errorf("KRL format version %d is not %d", v, krlFormatVersion)
	}
	if k.Version, err = r.u64(); err != nil {
		return nil, err
	}
	if _, err = r.u64(); err != nil { // generated_date
		return nil, err
	}
	if _, err = r.u64(); err != nil { // flags
		return nil, err
	}
	if _, err = r.str(); err != nil { // reserved
		return nil, err
	}
	if k.Comment, err = r.cstr(); err != nil {
		return nil, err
	}
	sections := r.b

	// First pass: signatures, before anything is trusted (as OpenSSH).
	sigSeen := false
	for p := (&krlReader{b: sections}); len(p.b) > 0; {
		typ, err := p.u8()
		if err != nil {
			return nil, err
		}
		body, err := p.str()
		if err != nil {
			return nil, err
		}
		if typ != krlSectionSignature {
			if sigSeen {
				return nil, errors.New("KRL contains non-signature section after signature")
			}
			continue
		}
		sigSeen = true
		key, err := ssh.ParsePublicKey(body)
		if err != nil {
			return nil, fmt.Errorf("KRL signature key: %v", err)
		}
		signed := data[:len(data)-len(p.b)]
		blob, err := p.str()
		if err != nil {
			return nil, err
		}
		var sig ssh.Signature
		if err := ssh.Unmarshal(blob, &sig); err != nil {
			return nil, fmt.Errorf("KRL signature: %v", err)
		}
		if err := key.Verify(signed, &sig); err != nil {
			return nil, errors.New("KRL signature does not verify")
		}
		for _, s := range k.signers {
			if bytes.Equal(s.Marshal(), key.Marshal()) {
				return nil, errors.New("KRL signed more than once with the same key")
			}
		}
		k.signers = append(k.signers, key)
	}

	// Second pass: the revocations.
	for p := (&krlReader{b: sections}); len(p.b) > 0; {
		typ, err := p.u8()
		if err != nil {
			return nil, err
		}
		body, err := p.str()
		if err != nil {
			return nil, err
		}
		sect := &krlReader{b: body}
		switch typ {
		case krlSectionCertificates:
			err = k.parseCerts(sect)
		case krlSectionExplicitKey:
			err = blobSection(sect, 0, func(b []byte) { k.keys[string(b)] = true })
		case krlSectionSHA1:
			err = blobSection(sect, sha1.Size, func(b []byte) { k.sha1s[[sha1.Size]byte(b)] = true })
		case krlSectionSHA256:
			err = blobSection(sect, sha256.Size, func(b []byte) { k.sha256s[[sha256.Size]byte(b)] = true })
		case krlSectionSignature:
			sect.b = nil
			_, err = p.str()
		default:
			return nil, fmt.Errorf("unsupported KRL section %d", typ)
		}
		if err != nil {
			return nil, err
		}
		if len(sect.b) > 0 {
			return nil, errors.New("KRL section contains unparsed data")
		}
	}

	if len(k.signers) > 0 {
		ok := false
		for _, s := range k.signers {
			if !k.IsRevoked(s) {
				ok = true
			}
		}
		if !ok {
			return nil, errors.New("all keys used to sign KRL were revoked")
		}
	}
	return k, nil
}

func blobSection(r *krlReader, size int, add func([]byte)) error {
	for len(r.b) > 0 {
		b, err := r.str()
		if err != nil {
			return err
		}
		if size != 0 && len(b) != size {
			return errors.New("KRL fingerprint of the wrong length")
		}
		add(b)
	}
	return nil
}

// parseCerts is parse_revoked_certs.
func (k *KRL) parseCerts(r *krlReader) error {
	caBlob, err := r.str()
	if err != nil {
		return err
	}
	if _, err := r.str(); err != nil { // reserved
		return err
	}
	var ca []byte
	if len(caBlob) > 0 {
		key, err := ssh.ParsePublicKey(caBlob)
		if err != nil {
			return fmt.Errorf("KRL CA key: %v", err)
		}
		ca = key.Marshal()
	}
	rc := k.certsFor(ca)
	for len(r.b) > 0 {
		typ, err := r.u8()
		if err != nil {
			return err
		}
		body, err := r.str()
		if err != nil {
			return err
		}
		sub := &krlReader{b: body}
		switch typ {
		case krlCertSerialList:
			for len(sub.b) > 0 {
				s, err := sub.u64()
				if err != nil {
					return err
				}
				if s == 0 {
					return errors.New("KRL revokes certificate serial 0")
				}
				rc.ranges = append(rc.ranges, [2]uint64{s, s})
			}
		case krlCertSerialRange:
			lo, err := sub.u64()
			if err != nil {
				return err
			}
			hi, err := sub.u64()
			if err != nil {
				return err
			}
			if lo > hi || lo == 0 {
				return errors.New("KRL serial range is empty or starts at 0")
			}
			rc.ranges = append(rc.ranges, [2]uint64{lo, hi})
		case krlCertSerialBitmap:
			off, err := sub.u64()
			if err != nil {
				return err
			}
			bits, err := sub.mpint()
			if err != nil {
				return err
			}
			if len(bits) > 0 {
				nbits := uint64(len(bits))*8 - uint64(leadingZeros(bits[0]))
				if off == 0 && bits[len(bits)-1]&1 == 1 {
					return errors.New("KRL revokes certificate serial 0")
				}
				if off != 0 && nbits-1 > math.MaxUint64-off {
					return errors.New("KRL bitmap wraps u64")
				}
				rc.bitmaps = append(rc.bitmaps, krlBitmap{offset: off, bits: bits})
			}
		case krlCertKeyID:
			for len(sub.b) > 0 {
				id, err := sub.cstr()
				if err != nil {
					return err
				}
				if rc.keyIDs == nil {
					rc.keyIDs = map[string]bool{}
				}
				rc.keyIDs[id] = true
			}
		default:
			return fmt.Errorf("unsupported KRL certificate section %d", typ)
		}
		if len(sub.b) > 0 {
			return errors.New("KRL certificate section contains unparsed data")
		}
	}
	return nil
}

func leadingZeros(b byte) int {
	n := 0
	for i := 7; i >= 0 && b>>i&1 == 0; i-- {
		n++
	}
	return n
}

// certsFor is revoked_certs_for_ca_key with allow_create: sections for the
// same CA (nil: any CA) are merged.
func (k *KRL) certsFor(ca []byte) *krlCerts {
	for _, rc := range k.certs {
		if (ca == nil) == (rc.ca == nil) && bytes.Equal(rc.ca, ca) {
			return rc
		}
	}
	rc := &krlCerts{ca: ca}
	k.certs = append(k.certs, rc)
	return rc
}

// IsRevoked is ssh_krl_check_key.
func (k *KRL) IsRevoked(key ssh.PublicKey) bool {
	if k.keyRevoked(key) {
		return true
	}
	if cert, ok := key.(*ssh.Certificate); ok && cert.SignatureKey != nil {
		return k.keyRevoked(cert.SignatureKey)
	}
	return false
}

// keyRevoked is is_key_revoked.
func (k *KRL) keyRevoked(key ssh.PublicKey) bool {
	blob := plain(key).Marshal()
	if k.sha1s[sha1.Sum(blob)] || k.sha256s[sha256.Sum256(blob)] || k.keys[string(blob)] {
		return true
	}
	cert, ok := key.(*ssh.Certificate)
	if !ok || cert.SignatureKey == nil {
		return false
	}
	ca := cert.SignatureKey.Marshal()
	for _, rc := range k.certs {
		if rc.ca != nil && bytes.Equal(rc.ca, ca) && rc.revokes(cert) {
			return true
		}
	}
	for _, rc := range k.certs {
		if rc.ca == nil && rc.revokes(cert) {
			return true
		}
	}
	return false
}

// revokes is is_cert_revoked: by key ID, or by a serial other than 0.
func (rc *krlCerts) revokes(cert *ssh.Certificate) bool {
	if rc.keyIDs[cstring(cert.KeyId)] {
		return true
	}
	s := cert.Serial
	if s == 0 {
		return false
	}
	for _, r := range rc.ranges {
		if r[0] <= s && s <= r[1] {
			return true
		}
	}
	for _, b := range rc.bitmaps {
		if b.has(s) {
			return true
		}
	}
	return false
}

// cstring is a string as C sees it: up to the first NUL.
func cstring(s string) string {
	if i := bytes.IndexByte([]byte(s), 0); i >= 0 {
		return s[:i]
	}
	return s
}
