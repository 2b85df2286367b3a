package hostkeys

import (
	"crypto/rsa"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestLookupMatchesKeygen builds a known_hosts file full of edge cases and
// checks, for many names, that the lines Load keeps for the name are exactly
// the lines ssh-keygen -F reports, in the plain file and in the file hashed
// by ssh-keygen -H.
func TestLookupMatchesKeygen(t *testing.T) {
	dir := t.TempDir()
	_, ed := genKey(t, dir, "ed", "ed25519")
	rsaPub, rsaKey := genKey(t, dir, "rsa", "rsa", "-b", "2048")
	_, ec := genKey(t, dir, "ec", "ecdsa")
	caPriv := filepath.Join(dir, "ca")
	genKey(t, dir, "ca", "ed25519")
	cert := signHost(t, caPriv, rsaPub, "-n", "host2")

	K, R, E := authorized(ed), authorized(rsaKey), authorized(ec)
	edBlob := strings.Fields(K)[1]
	rsaBlob := strings.Fields(R)[1]
	ecBlob := strings.Fields(E)[1]
	small, err := ssh.NewPublicKey(&rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 767), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 1030)

	lines := []string{
		"# comment", // 1
		"",          // 2
		"   host1.example.com " + K + " comment here",                          // 3
		"*.wild.example " + K,                                                  // 4
		"*.neg.example,!bad.neg.example " + K,                                  // 5
		"[127.0.0.1]:2222 " + K,                                                // 6
		"[127.0.0.1]:2222,127.0.0.1 " + E,                                      // 7
		"garbage line here",                                                    // 8
		"host1.example.com",                                                    // 9
		"host1.example.com ssh-ed25519",                                        // 10
		"host1.example.com ssh-ed25519 AAAAnot!base64",                         // 11
		"host1.example.com ssh-rsa " + edBlob,                                  // 12 type mismatch
		"@cert-authority *.example.com " + K,                                   // 13
		"@revoked * " + R,                                                      // 14
		"@bogus host1.example.com " + K,                                        // 15
		"@revoked @revoked host1.example.com " + K,                             // 16
		"Host1.Example.COM " + K,                                               // 17
		"host?.example.com " + E,                                               // 18
		"\thost1.example.com\t" + K,                                            // 19
		"host1.example.com ED25519 " + edBlob,                                  // 20 short name
		"host1.example.com rsa-sha2-512 " + rsaBlob,                            // 21 signature name
		"host1.example.com ECDSA " + ecBlob,                                    // 22 fails the curve check
		"host1.example.com " + K + "\r",                                        // 23 CRLF
		"|1|bad|bad " + K,                                                      // 24 bad salt
		"host1.example.com #comment",                                           // 25 truncated
		long + ",host1.example.com " + K,                                       // 26 subpattern too long
		"host1.example.com,!host1.example.com " + K,                            // 27 vetoed
		"host2 " + authorized(cert),                                            // 28 certificate on a line
		"host1.example.com " + authorized(small),                               // 29 RSA too small
		"@revoked\thost1.example.com " + K,                                     // 30 tab after marker, space later
		"@revoked\thost1.example.com\t" + strings.Fields(K)[0] + "\t" + edBlob, // 31 tabs only
		"[host3]:22 " + K,                                                      // 32
		"host1.example.com,other " + K + " trailing comment",                   // 33
		"*.example.com,!*.neg.example.com " + E,                                // 34
		"h* " + K,                                                              // 35
		"host1.example.com " + K + "\x00garbage",                               // 36 NUL ends the line
		"@cert-authority " + K,                                                 // 37 no key
		"host1.example.com ssh-ed25519 " + edBlob + "=",                        // 38 bad padding
	}
	plainFile := filepath.Join(dir, "known_hosts")
	writeFile(t, plainFile, lines...)

	names := []string{
		"host1.example.com", "HOST1.example.com", "a.wild.example", "wild.example",
		"x.neg.example", "bad.neg.example", "[127.0.0.1]:2222", "127.0.0.1", "host2",
		"hostx.example.com", "other", "foo.example.com", "[host3]:22", "host3",
		"a.neg.example.com", "h", "unknown",
	}

	check := func(t *testing.T, file string) {
		db, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			var got []int
			for _, e := range db.lookup(lowerASCII(name)) {
				got = append(got, e.line)
			}
			// ssh lowercases the host name before the lookup (ssh_login);
			// ssh-keygen -F does not, so it gets the name as ssh would use it.
			want := keygenFind(t, file, lowerASCII(name))
			if !slices.Equal(got, want) {
				t.Errorf("%s: lines for %q: got %v, ssh-keygen -F says %v", filepath.Base(file), name, got, want)
			}
		}
		if t.Failed() {
			for _, s := range db.Skipped() {
				t.Log("skipped:", s)
			}
		}
	}
	t.Run("plain", func(t *testing.T) { check(t, plainFile) })

	// ssh-keygen -H refuses a file with invalid lines, and leaves patterns
	// unhashed: a separate file of plain names.
	hashedFile := filepath.Join(dir, "known_hosts_hashed")
	writeFile(t, hashedFile,
		"host1.example.com "+K,
		"[127.0.0.1]:2222,127.0.0.1 "+E,
		"@revoked host1.example.com "+R,
		"@cert-authority host2,other "+K,
		"host2 "+authorized(cert),
		"# comment",
		"[host3]:22 "+K,
		"*.example.com "+E,
	)
	keygen(t, "-q", "-H", "-f", hashedFile)
	hashed, _ := os.ReadFile(hashedFile)
	if !strings.Contains(string(hashed), "|1|") {
		t.Fatal("ssh-keygen -H wrote no hashed line")
	}
	t.Run("hashed", func(t *testing.T) { check(t, hashedFile) })
}

func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		s, p string
		want bool
	}{
		{"abc", "abc", true},
		{"abc", "a*", true},
		{"abc", "*c", true},
		{"abc", "a?c", true},
		{"abc", "a??c", false},
		{"abc", "*", true},
		{"", "*", true},
		{"", "", true},
		{"a", "", false},
		{"aaa.b", "*a.b", true},
		{"ab", "*a*b*", true},
		{"ab", "*a*c*", false},
		{"mississippi", "m*iss*ppi", true},
		{strings.Repeat("a", 60), strings.Repeat("*a", 30) + "b", false},
	} {
		if got := matchPattern(c.s, c.p); got != c.want {
			t.Errorf("matchPattern(%q, %q) = %v", c.s, c.p, got)
		}
	}
}
