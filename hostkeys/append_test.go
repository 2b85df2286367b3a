package hostkeys

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAppend(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "new", ".ssh")
	kh := filepath.Join(dir, "known_hosts")

	if err := Append(kh, "Plain.Example", 22, f.ed, false); err != nil {
		t.Fatal(err)
	}
	if err := Append(kh, "hashed.example", 2222, f.ec, true); err != nil {
		t.Fatal(err)
	}
	// A certificate is recorded as its plain key.
	if err := Append(kh, "cert.example", 0, f.cert, false); err != nil {
		t.Fatal(err)
	}

	for path, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, kh: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	data, _ := os.ReadFile(kh)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "plain.example "+authorized(f.ed) ||
		!strings.HasPrefix(lines[1], "|1|") || strings.Contains(lines[1], "hashed") ||
		lines[2] != "cert.example "+authorized(f.ed) {
		t.Fatalf("file:\n%s", data)
	}

	db, err := Load(kh)
	if err != nil {
		t.Fatal(err)
	}
	if s := db.Skipped(); len(s) != 0 {
		t.Errorf("skipped %q", s)
	}
	for _, c := range []struct {
		host string
		port int
		want Status
	}{
		{"plain.example", 22, Known},
		{"hashed.example", 2222, Known},
		{"HASHED.example", 2222, Known},
		{"hashed.example", 22, Unknown},
		{"cert.example", 22, Known},
	} {
		key := f.ed
		if strings.HasPrefix(c.host, "hashed") || strings.HasPrefix(c.host, "HASHED") {
			key = f.ec
		}
		if r := db.Check(c.host, c.port, key); r.Status != c.want {
			t.Errorf("%s:%d: %v, want %v", c.host, c.port, r.Status, c.want)
		}
	}
	// OpenSSH finds what Append wrote, hashed or not.
	for name, line := range map[string]int{"plain.example": 1, "[hashed.example]:2222": 2, "cert.example": 3} {
		if got := keygenFind(t, kh, name); !slices.Equal(got, []int{line}) {
			t.Errorf("ssh-keygen -F %s: lines %v, want [%d]", name, got, line)
		}
	}
}

func TestAppendNeverTruncates(t *testing.T) {
	f := newFixture(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	// Existing content, including a line that does not parse and no final
	// newline, stays byte for byte.
	old := "# mine\nold.example " + authorized(f.other) + "\nnot a valid line"
	if err := os.WriteFile(kh, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Append(kh, "new.example", 22, f.ed, false); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(kh)
	want := old + "\nnew.example " + authorized(f.ed) + "\n"
	if string(data) != want {
		t.Fatalf("file:\n%q\nwant\n%q", data, want)
	}
	if err := Append(kh, "new2.example", 22, f.ed, true); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(kh)
	if !strings.HasPrefix(string(data), want) || strings.Count(string(data), "\n") != strings.Count(want, "\n")+1 {
		t.Fatalf("second append changed the file:\n%s", data)
	}
	// The mode of an existing file is left alone.
	if fi, _ := os.Stat(kh); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode changed to %v", fi.Mode())
	}
	db, err := Load(kh)
	if err != nil {
		t.Fatal(err)
	}
	if r := db.Check("new2.example", 22, f.ed); r.Status != Known {
		t.Errorf("new2.example: %v", r.Status)
	}
	if r := db.Check("old.example", 22, f.other); r.Status != Known {
		t.Errorf("old.example: %v", r.Status)
	}
}

func TestAppendRejectsBadNames(t *testing.T) {
	f := newFixture(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	for _, name := range []string{"", "a b", "a\nb", "#x", "@revoked"} {
		if err := Append(kh, name, 22, f.ed, false); err == nil {
			t.Errorf("Append(%q) accepted", name)
		}
	}
	if _, err := os.Stat(kh); !os.IsNotExist(err) {
		t.Errorf("a rejected name created the file")
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	// Missing files and directories are skipped; nothing to load is no error.
	db, err := Load(filepath.Join(dir, "missing"), dir)
	if err != nil || len(db.entries) != 0 {
		t.Fatalf("%v %v", db, err)
	}
	big := filepath.Join(dir, "big")
	fh, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(maxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
	long := filepath.Join(dir, "long")
	writeFile(t, long, strings.Repeat("a", maxLineLen+1), "# fine")
	db, err = Load(long)
	if err != nil {
		t.Fatal(err)
	}
	if s := db.Skipped(); len(s) != 1 || !strings.HasSuffix(s[0], "long:1: line too long") {
		t.Errorf("skipped %q", s)
	}
}
