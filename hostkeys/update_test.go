package hostkeys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

// PlanUpdate sees what client_input_hostkeys sees: keys the host's lines
// lack (to prove), lines whose key the server no longer sends (to remove),
// and OpenSSH's reasons to leave the files alone.
func TestPlanUpdate(t *testing.T) {
	a, b, c, other := testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	kh2 := filepath.Join(dir, "known_hosts2")
	for _, tc := range []struct {
		name        string
		lines       []string
		sent        []ssh.PublicKey
		wantNew     int
		wantOld     int
		wantSkip    string
		secondLines []string
	}{
		{"learn two", []string{"[h.example]:2222 " + authorized(a)}, []ssh.PublicKey{a, b, c}, 2, 0, "", nil},
		{"retire one", []string{"[h.example]:2222 " + authorized(a), "[h.example]:2222 " + authorized(b)}, []ssh.PublicKey{a}, 0, 1, "", nil},
		{"nothing to do", []string{"[h.example]:2222 " + authorized(a)}, []ssh.PublicKey{a}, 0, 0, "no new", nil},
		{"other hosts untouched", []string{"[h.example]:2222 " + authorized(a), "elsewhere " + authorized(other)}, []ssh.PublicKey{a, b}, 1, 0, "", nil},
		// ssh leaves a wildcard or list line's key uncounted, then skips.
		{"wildcard", []string{"[h.example]:* " + authorized(a)}, []ssh.PublicKey{a, b}, 2, 0, "wildcard", nil},
		{"ca marker", []string{"@cert-authority [h.example]:2222 " + authorized(other), "[h.example]:2222 " + authorized(a)}, []ssh.PublicKey{a, b}, 1, 0, "marker", nil},
		{"three names", []string{"[h.example]:2222,x,y " + authorized(a)}, []ssh.PublicKey{a, b}, 2, 0, "manual host list", nil},
		{"sent key known under another name", []string{"[h.example]:2222 " + authorized(a), "alias " + authorized(b)}, []ssh.PublicKey{a, b}, 1, 0, "different name", nil},
		{"retired key used by another name", []string{"[h.example]:2222 " + authorized(a), "[h.example]:2222 " + authorized(b), "alias " + authorized(b)}, []ssh.PublicKey{a}, 0, 1, "other names", nil},
		{"second file counts", []string{"[h.example]:2222 " + authorized(a)}, []ssh.PublicKey{a, b}, 0, 0, "no new", []string{"[h.example]:2222 " + authorized(b)}},
	} {
		writeFile(t, kh, tc.lines...)
		os.Remove(kh2)
		if tc.secondLines != nil {
			writeFile(t, kh2, tc.secondLines...)
		}
		p, err := PlanUpdate([]string{kh, kh2}, "H.example", 2222, tc.sent)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(p.New) != tc.wantNew || len(p.Old) != tc.wantOld || !strings.Contains(p.Skip, tc.wantSkip) || (tc.wantSkip == "") != (p.Skip == "") {
			t.Errorf("%s: %d new, %d old, skip %q; want %d, %d, %q", tc.name, len(p.New), len(p.Old), p.Skip, tc.wantNew, tc.wantOld, tc.wantSkip)
		}
	}
}

// Replace keeps every line that is not the host's as written (comments,
// other hosts, lines it cannot parse, CA lines), drops the host's retired
// keys, adds the new ones (hashed with HashKnownHosts), keeps FILE.old, and
// writes nothing when nothing changes.
func TestReplace(t *testing.T) {
	a, b, c, other := testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t), testenv.NewPublicKey(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	before := []string{
		"# my hosts",
		"[h.example]:2222 " + authorized(a) + " kept comment",
		"",
		"elsewhere " + authorized(other),
		"not a valid line",
		"[h.example]:2222 " + authorized(b),
		"@cert-authority [h.example]:2222 " + authorized(other),
	}
	writeFile(t, kh, before...)
	orig, _ := os.ReadFile(kh)
	changes, err := Replace(kh, "h.example", 2222, []ssh.PublicKey{a, c}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || !strings.Contains(changes[0], ":6: Removed ED25519 key for host [h.example]:2222") ||
		!strings.HasPrefix(changes[1], "Adding new key for [h.example]:2222 to "+kh) {
		t.Errorf("changes: %q", changes)
	}
	want := strings.Join([]string{before[0], before[1], before[2], before[3], before[4], before[6], "[h.example]:2222 " + authorized(c)}, "\n") + "\n"
	if got, _ := os.ReadFile(kh); string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	if old, _ := os.ReadFile(kh + ".old"); string(old) != string(orig) {
		t.Errorf("%s.old is not the previous file:\n%s", kh, old)
	}
	if fi, _ := os.Stat(kh); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if m, _ := filepath.Glob(kh + ".*"); len(m) != 1 {
		t.Errorf("left behind: %q", m)
	}

	// Nothing to change: the file is not rewritten.
	fi1, _ := os.Stat(kh)
	if changes, err := Replace(kh, "h.example", 2222, []ssh.PublicKey{a, c}, false); err != nil || changes != nil {
		t.Errorf("second replace: %q, %v", changes, err)
	}
	if fi2, _ := os.Stat(kh); !os.SameFile(fi1, fi2) {
		t.Error("an unchanged file was rewritten")
	}

	// Hashed: the new line's name is hashed and matches the host.
	if _, err := Replace(kh, "h.example", 2222, []ssh.PublicKey{a, c, b}, true); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(kh)
	if strings.Contains(string(data), "[h.example]:2222 "+authorized(b)) || !strings.Contains(string(data), "|1|") {
		t.Errorf("hashed entry not written hashed:\n%s", data)
	}
	db, err := Load(kh)
	if err != nil {
		t.Fatal(err)
	}
	if r := db.Check("h.example", 2222, b); r.Status != Known {
		t.Errorf("hashed new key: %v", r.Status)
	}

	// No keys (the second user file): every line for the host goes.
	if _, err := Replace(kh, "h.example", 2222, nil, false); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(kh)
	if strings.Contains(string(data), "\n[h.example]") || strings.Contains(string(data), "|1|") || !strings.Contains(string(data), "@cert-authority") {
		t.Errorf("after removing the host:\n%s", data)
	}
}
