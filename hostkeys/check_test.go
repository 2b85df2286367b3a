package hostkeys

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

type fixture struct {
	dir                      string
	ed, ec, other, ca, badCA ssh.PublicKey
	edPub, edPriv, caPriv    string
	cert, expired, wrongName *ssh.Certificate
	noPrincipals, userCert   *ssh.Certificate
	unknownCA, revokedCACert *ssh.Certificate
	revokedCAPriv, badCAPriv string
	revokedCA                ssh.PublicKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	f.edPub, f.ed = genKey(t, f.dir, "host_ed25519", "ed25519")
	f.edPriv = strings.TrimSuffix(f.edPub, ".pub")
	_, f.ec = genKey(t, f.dir, "host_ecdsa", "ecdsa")
	_, f.other = genKey(t, f.dir, "other", "ed25519")
	_, f.ca = genKey(t, f.dir, "ca", "ed25519")
	f.caPriv = filepath.Join(f.dir, "ca")
	_, f.badCA = genKey(t, f.dir, "badca", "ecdsa")
	f.badCAPriv = filepath.Join(f.dir, "badca")
	_, f.revokedCA = genKey(t, f.dir, "revokedca", "ed25519")
	f.revokedCAPriv = filepath.Join(f.dir, "revokedca")

	f.cert = signHost(t, f.caPriv, f.edPub, "-n", "host.example")
	f.expired = signHost(t, f.caPriv, f.edPub, "-n", "host.example", "-V", "20200101:20200102")
	f.wrongName = signHost(t, f.caPriv, f.edPub, "-n", "elsewhere.example")
	f.noPrincipals = signHost(t, f.caPriv, f.edPub)
	f.unknownCA = signHost(t, f.badCAPriv, f.edPub, "-n", "host.example")
	f.revokedCACert = signHost(t, f.revokedCAPriv, f.edPub, "-n", "host.example")
	// A user certificate (no -h) from the trusted CA.
	keygen(t, "-q", "-s", f.caPriv, "-I", "user", "-n", "host.example", f.edPub)
	f.userCert = testenv.ReadPub(t, f.edPriv+"-cert.pub").(*ssh.Certificate)
	return f
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	kh := filepath.Join(f.dir, "known_hosts")
	global := filepath.Join(f.dir, "ssh_known_hosts")
	writeFile(t, kh,
		"plain.example "+authorized(f.ed),                           // 1
		"ecdsa-only.example "+authorized(f.ec),                      // 2
		"*.wild.example,!veto.wild.example "+authorized(f.ed),       // 3
		"[127.0.0.1]:2222 "+authorized(f.ed),                        // 4
		"both.example "+authorized(f.ec),                            // 5
		"both.example "+authorized(f.ed),                            // 6
		"@cert-authority *.example,[*.example]:* "+authorized(f.ca), // 7
		"@revoked revoked.example "+authorized(f.ed),                // 8
		"revoked.example "+authorized(f.ed),                         // 9
		"@revoked elsewhere.example "+authorized(f.other),           // 10
		"other-revoked.example "+authorized(f.other),                // 11
		"@revoked *.example "+authorized(f.revokedCA),               // 12
		"@cert-authority *.example "+authorized(f.revokedCA),        // 13
		"[portchanged.example]:2200 "+authorized(f.other),           // 14
		"portchanged.example "+authorized(f.ed),                     // 15
		"myalias "+authorized(f.ed),                                 // 16
		"garbage",                                                   // 17
	)
	writeFile(t, global, "global.example "+authorized(f.ed))

	db, err := Load(filepath.Join(f.dir, "missing"), kh, global)
	if err != nil {
		t.Fatal(err)
	}
	db.now = func() time.Time { return time.Now() }

	for _, c := range []struct {
		name    string
		host    string
		port    int
		key     ssh.PublicKey
		want    Status
		found   string // "file:line" of Found, "" for none
		certErr bool
	}{
		{"plain known", "plain.example", 22, f.ed, Known, "known_hosts:1", false},
		{"case folded", "PLAIN.Example", 22, f.ed, Known, "known_hosts:1", false},
		{"global file", "global.example", 22, f.ed, Known, "ssh_known_hosts:1", false},
		{"unknown host", "nowhere.test", 22, f.ed, Unknown, "", false},
		{"other key same type", "plain.example", 22, f.other, Changed, "known_hosts:1", false},
		// hostfile.c: any differing known key is a change, whatever its type.
		{"other key type", "ecdsa-only.example", 22, f.ed, Changed, "known_hosts:2", false},
		{"one of two keys", "both.example", 22, f.ed, Known, "known_hosts:6", false},
		{"wildcard", "a.wild.example", 22, f.ed, Known, "known_hosts:3", false},
		{"negated", "veto.wild.example", 22, f.ed, Unknown, "", false},
		{"bracketed port", "127.0.0.1", 2222, f.ed, Known, "known_hosts:4", false},
		{"port 22 is bare", "127.0.0.1", 22, f.ed, Unknown, "", false},
		{"port-less retry", "plain.example", 2200, f.ed, Known, "known_hosts:1", false},
		{"port-less retry needs a match", "plain.example", 2200, f.other, Unknown, "", false},
		{"port entry changed: no retry", "portchanged.example", 2200, f.ed, Changed, "known_hosts:14", false},
		{"alias", "MyAlias", 0, f.ed, Known, "known_hosts:16", false},
		{"revoked wins over a key line", "revoked.example", 22, f.ed, Revoked, "known_hosts:8", false},
		{"revoked only for matching hosts", "other-revoked.example", 22, f.other, Known, "known_hosts:11", false},
		{"cert", "host.example", 22, f.cert, Known, "known_hosts:7", false},
		{"cert on another port", "host.example", 2222, f.cert, Known, "known_hosts:7", false},
		{"cert without principals", "host.example", 22, f.noPrincipals, Known, "known_hosts:7", false},
		{"cert expired falls back to plain key", "host.example", 22, f.expired, Unknown, "", true},
		{"cert wrong principal falls back", "host.example", 22, f.wrongName, Unknown, "", true},
		{"cert from unknown CA falls back", "host.example", 22, f.unknownCA, Unknown, "", true},
		{"user cert is not a host cert", "host.example", 22, f.userCert, Unknown, "", true},
		{"cert fallback finds the plain key", "plain.example", 22, f.unknownCA, Known, "known_hosts:1", true},
		{"cert fallback finds a changed key", "ecdsa-only.example", 22, f.unknownCA, Changed, "known_hosts:2", true},
		{"cert whose CA is revoked", "host.example", 22, f.revokedCACert, Revoked, "known_hosts:12", false},
		{"cert of a revoked key", "revoked.example", 22, f.cert, Revoked, "known_hosts:8", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := db.Check(c.host, c.port, c.key)
			if r.Status != c.want {
				t.Errorf("status %v, want %v (certErr %v)", r.Status, c.want, r.CertErr)
			}
			found := ""
			if r.Found != nil {
				found = filepath.Base(r.Found.File) + ":" + strconv.Itoa(r.Found.Line)
			}
			if found != c.found {
				t.Errorf("found %q, want %q", found, c.found)
			}
			if (r.CertErr != nil) != c.certErr {
				t.Errorf("certErr %v, want one: %v", r.CertErr, c.certErr)
			}
		})
	}

	t.Run("want lists the host's lines", func(t *testing.T) {
		r := db.Check("both.example", 22, f.other)
		if r.Status != Changed || r.Name != "both.example" {
			t.Fatalf("%+v", r)
		}
		var got []string
		for _, m := range r.Want {
			got = append(got, m.String())
		}
		if len(got) != 5 || !strings.Contains(got[0], "known_hosts:5: ecdsa-sha2-nistp256 SHA256:") ||
			!strings.Contains(got[2], "known_hosts:7: @cert-authority ssh-ed25519 ") ||
			!strings.Contains(got[3], "known_hosts:12: @revoked ssh-ed25519 ") {
			t.Errorf("want lines: %q", got)
		}
	})
	t.Run("bracketed name", func(t *testing.T) {
		if r := db.Check("nowhere.test", 2200, f.ed); r.Name != "[nowhere.test]:2200" {
			t.Errorf("name %q", r.Name)
		}
	})
	t.Run("cert validity uses the clock", func(t *testing.T) {
		db2 := *db
		db2.now = func() time.Time { return time.Date(2020, 1, 1, 12, 0, 0, 0, time.Local) }
		if r := db2.Check("host.example", 22, f.expired); r.Status != Known {
			t.Errorf("status %v (%v)", r.Status, r.CertErr)
		}
	})
	t.Run("skipped", func(t *testing.T) {
		s := db.Skipped()
		if len(s) != 1 || !strings.HasSuffix(s[0], "known_hosts:17: truncated before key type") {
			t.Errorf("skipped %q", s)
		}
	})
}

func TestCheckBadCertSignature(t *testing.T) {
	f := newFixture(t)
	kh := filepath.Join(f.dir, "known_hosts")
	writeFile(t, kh, "@cert-authority * "+authorized(f.ca), "host.example "+authorized(f.ed))
	db, err := Load(kh)
	if err != nil {
		t.Fatal(err)
	}
	forged := *f.cert
	forged.ValidPrincipals = []string{"host.example", "evil.example"}
	if r := db.Check("host.example", 22, &forged); r.Status != Invalid || r.CertErr == nil {
		t.Errorf("forged certificate: %v %v", r.Status, r.CertErr)
	}
	if r := db.Check("host.example", 22, f.cert); r.Status != Known {
		t.Errorf("real certificate: %v %v", r.Status, r.CertErr)
	}
}

// A host certificate with a critical option is refused as OpenSSH's
// sshkey_cert_check_host refuses it (cert-hostkey's "cert has constraints").
func TestCheckCertCriticalOptions(t *testing.T) {
	f := newFixture(t)
	kh := filepath.Join(f.dir, "known_hosts")
	writeFile(t, kh, "@cert-authority * "+authorized(f.ca))
	db, err := Load(kh)
	if err != nil {
		t.Fatal(err)
	}
	c := signHost(t, f.caPriv, f.edPub, "-n", "host.example", "-O", "force-command=false")
	var invalid *CertInvalidError
	if r := db.Check("host.example", 22, c); r.Status == Known || !errors.As(r.CertErr, &invalid) {
		t.Errorf("certificate with a critical option: %v %v", r.Status, r.CertErr)
	}
}

func TestHostKeyAlgorithms(t *testing.T) {
	f := newFixture(t)
	_, rsaKey := genKey(t, f.dir, "host_rsa", "rsa", "-b", "2048")
	kh := filepath.Join(f.dir, "known_hosts")
	writeFile(t, kh,
		"ecdsa.example "+authorized(f.ec),
		"rsa.example "+authorized(rsaKey),
		"ed.example "+authorized(f.ed),
		"@cert-authority ca.example "+authorized(f.ca),
		"@revoked revoked.example "+authorized(f.ed),
		"[ported.example]:2222 "+authorized(f.ec),
	)
	db, err := Load(kh)
	if err != nil {
		t.Fatal(err)
	}
	// OpenSSH 9.2's default HostKeyAlgorithms (ssh -G), as x/crypto can use it.
	openssh := []string{
		ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
		ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
		ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
	for _, c := range []struct {
		host  string
		port  int
		first []string // the algorithms moved to the front, in order
	}{
		{"unknown.example", 22, nil},
		{"ecdsa.example", 22, []string{ssh.CertAlgoECDSA256v01, ssh.KeyAlgoECDSA256}},
		{"rsa.example", 22, []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}},
		{"ca.example", 22, []string{ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01}},
		{"ed.example", 22, openssh[:1]}, // the best algorithm's type is known: verbatim
		{"revoked.example", 22, []string{}},
		{"ported.example", 2222, []string{ssh.CertAlgoECDSA256v01, ssh.KeyAlgoECDSA256}},
		{"ported.example", 22, nil},
	} {
		got := db.HostKeyAlgorithms(c.host, c.port, openssh)
		if c.first == nil {
			if got != nil {
				t.Errorf("%s: got %v, want nil", c.host, got)
			}
			continue
		}
		if len(got) != len(openssh) || !slices.Equal(got[:len(c.first)], c.first) {
			t.Errorf("%s:%d: got %v, want %v first", c.host, c.port, got, c.first)
		}
		// The rest keeps the caller's order.
		rest := slices.DeleteFunc(slices.Clone(openssh), func(a string) bool { return slices.Contains(c.first, a) })
		if !slices.Equal(got[len(c.first):], rest) && !slices.Equal(got, openssh) {
			t.Errorf("%s: rest %v, want %v", c.host, got[len(c.first):], rest)
		}
	}
	// x/crypto's own list starts with RSA certificates: an ssh-rsa line keeps
	// it verbatim, an ECDSA line moves its two algorithms first.
	xc := ssh.SupportedAlgorithms().HostKeys
	if got := db.HostKeyAlgorithms("rsa.example", 22, xc); !slices.Equal(got, xc) {
		t.Errorf("x/crypto list for rsa: %v", got)
	}
	if got := db.HostKeyAlgorithms("ecdsa.example", 22, xc); !slices.Equal(got[:2], []string{ssh.CertAlgoECDSA256v01, ssh.KeyAlgoECDSA256}) {
		t.Errorf("x/crypto list for ecdsa: %v", got)
	}
}
