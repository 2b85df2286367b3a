package hostkeys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// hashMagic starts a hashed host field: |1|base64(salt)|base64(hmac-sha1(salt, name)).
const hashMagic = "|1|"

// maxSubpattern is OpenSSH's match_pattern_list buffer (char sub[1024]): a
// subpattern of 1023 bytes or more makes the whole list fail to match.
const maxSubpattern = 1023

// lookupName is OpenSSH's put_host_port: the name alone for port 0 or 22,
// "[name]:port" otherwise.
func lookupName(name string, port int) string {
	if port == 0 || port == 22 {
		return name
	}
	return "[" + name + "]:" + strconv.Itoa(port)
}

// lowerASCII lowercases as OpenSSH's lowercase() does in the C locale.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// matchPatternList is OpenSSH's match_pattern_list(host, patterns, 1) as used
// by match_hostname: comma-separated glob patterns, lowercased; a matching
// negated pattern vetoes the list. host must already be lowercase.
func matchPatternList(host, list string) bool {
	positive := false
	for i := 0; i < len(list); {
		negated := false
		if list[i] == '!' {
			negated = true
			i++
		}
		j := strings.IndexByte(list[i:], ',')
		if j < 0 {
			j = len(list) - i
		}
		sub := list[i : i+j]
		if len(sub) >= maxSubpattern {
			return false
		}
		i += j
		if i < len(list) {
			i++ // the comma
		}
		if matchPattern(host, lowerASCII(sub)) {
			if negated {
				return false
			}
			positive = true
		}
	}
	return positive
}

// matchPattern is OpenSSH's match_pattern: '*' matches any run of bytes, '?'
// exactly one byte, everything else itself. Written iteratively (backtracking
// only to the last '*') so a hostile pattern cannot make it exponential; for
// these two wildcards that gives the same answers as OpenSSH's recursion.
func matchPattern(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// hashedHost is a parsed |1|salt|hash host field.
type hashedHost struct {
	field string // the field as written; a match must re-encode to exactly this
	salt  []byte
}

var errBadHash = errors.New("bad host hash")

// parseHashed is OpenSSH's extract_salt: the salt must decode to exactly
// 20 bytes or the line is invalid. The hash part is not checked here: as in
// OpenSSH, a line whose hash part is not what host_hash would write is valid
// but never matches.
func parseHashed(field string) (*hashedHost, error) {
	if !strings.HasPrefix(field, hashMagic) {
		return nil, errBadHash
	}
	rest := field[len(hashMagic):]
	n := strings.IndexByte(rest, '|')
	if n <= 0 || n > 1024 {
		return nil, errBadHash
	}
	salt, err := decodeB64(rest[:n])
	if err != nil || len(salt) != sha1.Size {
		return nil, errBadHash
	}
	return &hashedHost{field: field, salt: salt}, nil
}

func (h *hashedHost) match(host string) bool {
	return hashHost(host, h.salt) == h.field
}

// hashHost is OpenSSH's host_hash.
func hashHost(host string, salt []byte) string {
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(host))
	return hashMagic + base64.StdEncoding.EncodeToString(salt) + "|" +
		base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// decodeB64 decodes as OpenSSH's __b64_pton does: whitespace is ignored,
// padding is required and the unused bits must be zero.
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, " \t\n\v\f\r") {
		s = strings.Map(func(r rune) rune {
			if bytes.ContainsRune([]byte(" \t\n\v\f\r"), r) {
				return -1
			}
			return r
		}, s)
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}
