package hostkeys

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// ssh-keygen -k writes the KRLs and ssh-keygen -Q says which keys they
// revoke; ParseKRL and IsRevoked must agree with it on every key.

// krlFixture is a CA, an unrelated CA, plain keys and host certificates
// with assorted serials and key IDs, all made by ssh-keygen.
type krlFixture struct {
	dir   string
	ca    string // CA private key path (ca.pub beside it)
	other string
	files []string // .pub and -cert.pub files to check
}

func newKRLFixture(t *testing.T) *krlFixture {
	t.Helper()
	dir := t.TempDir()
	f := &krlFixture{dir: dir, ca: filepath.Join(dir, "ca"), other: filepath.Join(dir, "other_ca")}
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-f", f.ca)
	keygen(t, "-q", "-t", "ecdsa", "-N", "", "-f", f.other)
	for i, serial := range []int{0, 1, 42, 150, 199, 201, 1002, 1003, 1050, 1100, 5000} {
		typ := "ed25519"
		if i%3 == 1 {
			typ = "ecdsa"
		}
		name := filepath.Join(dir, fmt.Sprintf("k%d", i))
		keygen(t, "-q", "-t", typ, "-N", "", "-f", name)
		f.files = append(f.files, name+".pub")
		ca := f.ca
		if i%4 == 3 {
			ca = f.other
		}
		id := fmt.Sprintf("host-%d", i)
		keygen(t, "-q", "-s", ca, "-I", id, "-z", fmt.Sprint(serial), "-h", name+".pub")
		f.files = append(f.files, name+"-cert.pub")
	}
	return f
}

// oracle runs ssh-keygen -Q and returns, for each file, whether it is revoked.
func (f *krlFixture) oracle(t *testing.T, krl string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, file := range f.files {
		cmd := keygenQ(t, "-Q", "-f", krl, file)
		switch {
		case strings.Contains(cmd, ": REVOKED"):
			out[file] = true
		case strings.Contains(cmd, ": ok"):
			out[file] = false
		default:
			t.Fatalf("ssh-keygen -Q %s: %q", file, cmd)
		}
	}
	return out
}

// keygenQ runs ssh-keygen -Q, which exits 1 when a key is revoked.
func keygenQ(t *testing.T, args ...string) string {
	t.Helper()
	c := osexec.Command(needKeygen(t), args...)
	out, _ := c.CombinedOutput()
	return string(out)
}

func TestKRLAgreesWithSSHKeygen(t *testing.T) {
	f := newKRLFixture(t)
	pub := func(i int) string { return f.files[2*i] }
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	var dense []string
	for s := 1000; s <= 1100; s += 2 {
		dense = append(dense, fmt.Sprintf("serial: %d", s))
	}
	for _, tc := range []struct {
		name string
		ca   string // -s: the CA the serials and IDs are under ("" none)
		spec []string
		keys []string // plain .pub files revoked by explicit key
	}{
		{name: "explicit keys", keys: []string{pub(0), pub(3)}},
		{name: "sha1 and sha256", spec: []string{"sha1: " + read(pub(1)), "sha256: " + read(pub(2)), "hash: " + ssh.FingerprintSHA256(krlReadPub(t, pub(4)))}},
		{name: "serial list and range", ca: f.ca + ".pub", spec: []string{"serial: 42", "serial: 100-200"}},
		{name: "serial bitmap", ca: f.ca + ".pub", spec: dense},
		{name: "key id", ca: f.ca + ".pub", spec: []string{"id: host-5", "id: host-3"}},
		{name: "any CA by hand"},
		{name: "CA revoked", keys: []string{f.other + ".pub"}},
		{name: "mixed", ca: f.other + ".pub", spec: []string{"serial: 1-100000", "key: " + read(pub(6)), "sha256: " + read(pub(8))}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			krl := filepath.Join(f.dir, "krl")
			os.Remove(krl)
			if tc.name == "any CA by hand" {
				// ssh-keygen cannot write a section for any CA: build one
				// (key IDs, a serial range and a bitmap) and let -Q judge it.
				os.WriteFile(krl, handKRL(), 0o600)
				f.compare(t, krl)
				return
			}
			args := []string{"-k", "-f", krl}
			if tc.ca != "" {
				args = append(args, "-s", tc.ca)
			}
			if len(tc.spec) > 0 {
				spec := filepath.Join(f.dir, "spec")
				if err := os.WriteFile(spec, []byte(strings.Join(tc.spec, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, spec)
			}
			args = append(args, tc.keys...)
			keygen(t, args...)
			f.compare(t, krl)
		})
	}
}

// compare checks every fixture file against ssh-keygen -Q on krl.
func (f *krlFixture) compare(t *testing.T, krl string) {
	t.Helper()
	want := f.oracle(t, krl)
	rk, err := LoadRevoked(krl)
	if err != nil {
		t.Fatal(err)
	}
	if rk.krl == nil {
		t.Fatal("not read as a KRL")
	}
	n := 0
	for _, file := range f.files {
		got, err := rk.Check(krlReadPub(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if got != want[file] {
			t.Errorf("%s: revoked=%v, ssh-keygen -Q says %v", filepath.Base(file), got, want[file])
		}
		if got {
			n++
		}
	}
	if n == 0 {
		t.Errorf("the KRL revoked nothing: a useless case")
	}
}

// A plain key list: a key, a certificate's plain key, or a certificate's CA.
func TestRevokedKeyList(t *testing.T) {
	f := newKRLFixture(t)
	list := filepath.Join(f.dir, "revoked")
	k0, _ := os.ReadFile(f.files[0])
	ca, _ := os.ReadFile(f.other + ".pub")
	os.WriteFile(list, []byte("# revoked\n\n  "+string(k0)+string(ca)), 0o600)
	rk, err := LoadRevoked(list)
	if err != nil {
		t.Fatal(err)
	}
	for i, file := range f.files {
		got, err := rk.Check(krlReadPub(t, file))
		if err != nil {
			t.Fatal(err)
		}
		key := i / 2
		want := key == 0 || (key%4 == 3 && strings.HasSuffix(file, "-cert.pub"))
		if got != want {
			t.Errorf("%s: revoked=%v, want %v", filepath.Base(file), got, want)
		}
	}
	// A line that does not parse, before any match, is an error (ssh refuses).
	os.WriteFile(list, []byte("garbage line\n"+string(k0)), 0o600)
	rk, _ = LoadRevoked(list)
	if _, err := rk.Check(krlReadPub(t, f.files[0])); err == nil {
		t.Error("bad line: no error")
	}
	if _, err := LoadRevoked(filepath.Join(f.dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
	// A truncated KRL is an error, not an empty list.
	keygen(t, "-k", "-f", filepath.Join(f.dir, "krl"), f.files[0])
	b, _ := os.ReadFile(filepath.Join(f.dir, "krl"))
	os.WriteFile(list, b[:len(b)-3], 0o600)
	if _, err := LoadRevoked(list); err == nil {
		t.Error("truncated KRL: no error")
	}
}

// krlBuf builds KRL wire data.
type krlBuf []byte

func (b *krlBuf) u8(v byte)    { *b = append(*b, v) }
func (b *krlBuf) u32(v uint32) { *b = binary.BigEndian.AppendUint32(*b, v) }
func (b *krlBuf) u64(v uint64) { *b = binary.BigEndian.AppendUint64(*b, v) }
func (b *krlBuf) str(v []byte) { b.u32(uint32(len(v))); *b = append(*b, v...) }

func krlHeader() krlBuf {
	b := krlBuf(krlMagic)
	b.u32(1)
	b.u64(7)
	b.u64(0)
	b.u64(0)
	b.str(nil)
	b.str([]byte("by hand"))
	return b
}

// handKRL revokes, under any CA, key IDs host-3 and host-7, serials 150-150
// and, by bitmap from 1000, serials 1002 and 1050.
func handKRL() []byte {
	b := krlHeader()
	var sect krlBuf
	sect.str(nil) // any CA
	sect.str(nil)
	var ids krlBuf
	ids.str([]byte("host-3"))
	ids.str([]byte("host-7\x00"))
	sect.u8(krlCertKeyID)
	sect.str(ids)
	var rng krlBuf
	rng.u64(150)
	rng.u64(150)
	sect.u8(krlCertSerialRange)
	sect.str(rng)
	var bm krlBuf
	bm.u64(1000)
	bits := make([]byte, 7) // bit 2 and bit 50
	bits[len(bits)-1] |= 1 << 2
	bits[len(bits)-1-50/8] |= 1 << (50 % 8)
	bm.str(bits)
	sect.u8(krlCertSerialBitmap)
	sect.str(bm)
	b.u8(krlSectionCertificates)
	b.str(sect)
	return b
}

// FuzzParseKRL: no input panics or allocates beyond its size, and a KRL
// that parses answers IsRevoked for any key.
func FuzzParseKRL(f *testing.F) {
	f.Add(handKRL())
	f.Add([]byte(krlMagic))
	h := krlHeader()
	f.Add([]byte(h))
	for _, typ := range []byte{krlSectionExplicitKey, krlSectionSHA1, krlSectionSHA256, krlSectionSignature} {
		b := krlHeader()
		var s krlBuf
		s.str(make([]byte, 20))
		b.u8(typ)
		b.str(s)
		f.Add([]byte(b))
	}
	pub, _, _ := ed25519.GenerateKey(zeroReader{})
	key, _ := ssh.NewPublicKey(pub)
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKRL(data)
		if err != nil {
			return
		}
		k.IsRevoked(key)
		cert := &ssh.Certificate{Key: key, Serial: 1002, KeyId: "host-3", SignatureKey: key, CertType: ssh.HostCert}
		k.IsRevoked(cert)
	})
}

// krlReadPub parses a .pub or -cert.pub file.
func krlReadPub(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k
}
