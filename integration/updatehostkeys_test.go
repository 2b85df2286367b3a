package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

// knownKeys is the sorted "type base64" of each host line in a known_hosts
// file, and its comment lines.
func knownKeys(t *testing.T, path string) (keys, comments []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(f[0], "#"):
			comments = append(comments, l)
		case len(f) >= 3:
			keys = append(keys, f[1]+" "+f[2])
		}
	}
	slices.Sort(keys)
	return keys, comments
}

// UpdateHostKeys against an sshd with three host keys: with the option on,
// rssh learns the keys it has not seen (each proved by the server), drops
// a key the server no longer has and keeps every other line, as ssh does
// with the same file; with the option at its default for a non-default
// UserKnownHostsFile, or after a key accepted as new without asking,
// nothing changes, as with ssh. -G prints updatehostkeys as ssh does. (The
// default ~/.ssh/known_hosts is the passwd home's, so only -G tries it.)
func TestUpdateHostKeys(t *testing.T) {
	keygen := testenv.Need(t, "ssh-keygen", "openssh-client")
	w := &world{t: t, dir: t.TempDir()}
	w.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Setup: func(dir string, _ *testenv.Key) string {
		var lines []string
		for _, typ := range []string{"ecdsa", "rsa"} {
			p := filepath.Join(dir, "ssh_host_"+typ+"_key")
			if out, err := exec.Command(keygen, "-q", "-N", "", "-t", typ, "-f", p).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v\n%s", err, out)
			}
			lines = append(lines, "HostKey "+p)
		}
		return strings.Join(lines, "\n")
	}})
	w.user = testenv.LoginUser(t)
	w.key = testenv.NewKey(t, w.dir, "id_ed25519")
	w.sshd.Authorize(t, w.user, w.key)
	home := filepath.Join(w.dir, "home")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	w.env = append(cleanEnv(), "HOME="+home, "SSH_AUTH_SOCK=")
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.writeConfig("")
	var all []string
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		k := testenv.ReadPub(t, filepath.Join(w.sshd.Dir, "ssh_host_"+typ+"_key.pub"))
		f := strings.Fields(string(ssh.MarshalAuthorizedKey(k)))
		all = append(all, f[0]+" "+f[1])
	}
	slices.Sort(all)
	name := "[127.0.0.1]:" + testenv.Itoa(w.sshd.Port)
	retired := testenv.NewKey(t, w.dir, "retired")
	other := testenv.NewKey(t, w.dir, "other")
	start := "# kept comment\nelsewhere.example " + other.AuthorizedLine() + "\n" +
		w.sshd.KnownHostsLine() + "\n" + name + " " + retired.AuthorizedLine() + "\n"

	// Each client on its own copy of the same file.
	run := func(client string, kh string, opts ...string) (keys, comments []string) {
		t.Helper()
		w.writeFile(filepath.Base(kh), start)
		args := append([]string{"-F", w.config, "-o", "UserKnownHostsFile=" + kh}, opts...)
		args = append(args, "target", "true")
		bin := rsshBin
		if client == "ssh" {
			bin = w.sshBin()
		}
		if r := w.run(nil, bin, args...); r.code != 0 {
			t.Fatalf("%s %s: %s", client, strings.Join(args, " "), r)
		}
		return knownKeys(t, kh)
	}
	for _, c := range []struct {
		what  string
		opts  []string
		learn bool
	}{
		{"default (UserKnownHostsFile not the default one)", nil, false},
		{"UpdateHostKeys yes", []string{"-o", "UpdateHostKeys=yes"}, true},
		{"UpdateHostKeys yes, HashKnownHosts", []string{"-o", "UpdateHostKeys=yes", "-o", "HashKnownHosts=yes"}, true},
		{"UpdateHostKeys no", []string{"-o", "UpdateHostKeys=no"}, false},
	} {
		sshKeys, sshComments := run("ssh", filepath.Join(w.dir, "kh_ssh"), c.opts...)
		keys, comments := run("rssh", filepath.Join(w.dir, "kh_rssh"), c.opts...)
		if !slices.Equal(keys, sshKeys) || !slices.Equal(comments, sshComments) {
			t.Errorf("%s: rssh left\n%q\nssh left\n%q", c.what, keys, sshKeys)
		}
		// The server's three keys plus elsewhere.example's line, and the
		// retired one gone; or the file as it was.
		want := 4
		if !c.learn {
			want = 3
		}
		if len(keys) != want || len(comments) != 1 {
			t.Errorf("%s: %d keys, %d comments: %q", c.what, len(keys), len(comments), keys)
		}
		if c.learn {
			for _, k := range all {
				if !slices.Contains(keys, k) {
					t.Errorf("%s: %s not learned", c.what, k)
				}
			}
			if data, _ := os.ReadFile(filepath.Join(w.dir, "kh_rssh")); strings.Contains(string(data), name+" "+retired.AuthorizedLine()) {
				t.Errorf("%s: the retired key is still there:\n%s", c.what, data)
			}
		}
	}

	// A key accepted as new without asking is not trusted to update.
	kh := filepath.Join(w.dir, "kh_new")
	for _, client := range []string{"ssh", "rssh"} {
		os.Remove(kh)
		bin := rsshBin
		if client == "ssh" {
			bin = w.sshBin()
		}
		r := w.run(nil, bin, "-F", w.config, "-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=accept-new",
			"-o", "UpdateHostKeys=yes", "target", "true")
		if keys, _ := knownKeys(t, kh); r.code != 0 || len(keys) != 1 {
			t.Errorf("%s, accept-new: %d keys recorded, want 1: %s", client, len(keys), r)
		}
	}

	// -G: the default follows UserKnownHostsFile (yes for the default
	// ~/.ssh/known_hosts alone, which only -G may use here: ~ is the
	// passwd home); ask is off with a command.
	plain := w.writeFile("ssh_config_plain", "Host target\n\tHostName 127.0.0.1\n")
	for _, args := range [][]string{
		{"target"},
		{"-o", "UserKnownHostsFile=~/.ssh/known_hosts", "target"},
		{"-o", "UserKnownHostsFile=/elsewhere", "target"},
		{"-o", "UserKnownHostsFile=~/.ssh/known_hosts ~/.ssh/known_hosts2", "target"},
		{"-o", "UpdateHostKeys=ask", "target"},
		{"-o", "UpdateHostKeys=ask", "target", "true"},
		{"-o", "VerifyHostKeyDNS=yes", "target"},
		{"-o", "UpdateHostKeys=yes", "-o", "UserKnownHostsFile=/elsewhere", "target"},
	} {
		a := append([]string{"-G", "-F", plain}, args...)
		s, r := w.run(nil, w.sshBin(), a...), w.run(nil, rsshBin, a...)
		line := func(out string) string {
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "updatehostkeys ") {
					return l
				}
			}
			return ""
		}
		if line(s.stdout) == "" || line(s.stdout) != line(r.stdout) {
			t.Errorf("-G %s: ssh %q, rssh %q", strings.Join(args, " "), line(s.stdout), line(r.stdout))
		}
	}
}
