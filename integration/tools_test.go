package integration

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// The OpenSSH-based tools people point at an ssh replacement, each with its
// own way of running it and its own option set: scp -S (SFTP and, with -O,
// the old SCP protocol), sftp -S, rsync -e and git's GIT_SSH_COMMAND. Every
// one carries a file there and back intact through rssh.
func TestToolsUseRsshAsSSH(t *testing.T) {
	w := newWorld(t, "", "")
	remote := w.remoteDir()
	payload := make([]byte, 4<<20)
	rand.Read(payload)
	local := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(local, payload, 0o644)

	same := func(t *testing.T, path string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("%s: %d bytes, %v; want the %d bytes sent", path, len(got), err, len(payload))
		}
	}
	run := func(t *testing.T, env []string, argv ...string) {
		t.Helper()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(append([]string{}, w.env...), env...)
		cmd.Dir = t.TempDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%q: %v\n%s", argv, err, out)
		}
	}

	t.Run("scp", func(t *testing.T) {
		scp := testenv.Need(t, "scp", "openssh-client")
		for _, proto := range [][]string{nil, {"-O"}} {
			up := filepath.Join(remote, "scp-up"+strings.Join(proto, ""))
			down := filepath.Join(t.TempDir(), "scp-down")
			args := append([]string{scp, "-q", "-S", rsshBin, "-F", w.config}, proto...)
			run(t, nil, append(append([]string{}, args...), local, "target:"+up)...)
			same(t, up)
			run(t, nil, append(append([]string{}, args...), "target:"+up, down)...)
			same(t, down)
		}
	})
	t.Run("sftp", func(t *testing.T) {
		sftp := testenv.Need(t, "sftp", "openssh-client")
		up, down := filepath.Join(remote, "sftp-up"), filepath.Join(t.TempDir(), "sftp-down")
		batch := filepath.Join(t.TempDir(), "batch")
		os.WriteFile(batch, []byte("put "+local+" "+up+"\nget "+up+" "+down+"\n"), 0o644)
		run(t, nil, sftp, "-q", "-S", rsshBin, "-F", w.config, "-b", batch, "target")
		same(t, up)
		same(t, down)
	})
	t.Run("rsync", func(t *testing.T) {
		rsync := testenv.Need(t, "rsync", "rsync")
		up, down := filepath.Join(remote, "rsync-up"), filepath.Join(t.TempDir(), "rsync-down")
		e := rsshBin + " -F " + w.config
		run(t, nil, rsync, "-e", e, local, "target:"+up)
		same(t, up)
		run(t, nil, rsync, "-e", e, "target:"+up, down)
		same(t, down)
	})
	t.Run("git", func(t *testing.T) {
		git := testenv.Need(t, "git", "git")
		// The bare repository belongs to the login user, as on a real
		// server (git refuses a repository another user owns).
		repo := filepath.Join(remote, "repo.git")
		if r := w.rssh(nil, "target", "git init -q --bare "+repo); r.code != 0 {
			t.Fatalf("git init on the server: %s", r)
		}
		work := t.TempDir()
		gitEnv := []string{"GIT_SSH_COMMAND=" + rsshBin + " -F " + w.config,
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null"}
		run(t, gitEnv, git, "-C", work, "init", "-q", "-b", "main")
		os.WriteFile(filepath.Join(work, "payload"), payload, 0o644)
		run(t, gitEnv, git, "-C", work, "add", "payload")
		run(t, gitEnv, git, "-C", work, "commit", "-q", "-m", "payload")
		run(t, gitEnv, git, "-C", work, "push", "-q", "target:"+repo, "main")
		clone := filepath.Join(t.TempDir(), "clone")
		run(t, gitEnv, git, "clone", "-q", "-b", "main", "target:"+repo, clone)
		same(t, filepath.Join(clone, "payload"))
	})
}

// A subsystem session ends with the subsystem's own status, and one the
// server does not have fails as it fails for ssh.
func TestSubsystemStatus(t *testing.T) {
	w := newWorld(t, "", "")
	for _, prog := range []string{rsshBin, w.sshBin()} {
		r := w.run(strings.NewReader(""), prog, "-F", w.config, "-s", "target", "sftp")
		if r.code != 0 {
			t.Errorf("%s -s sftp with its input closed: %s", filepath.Base(prog), r)
		}
		r = w.run(nil, prog, "-F", w.config, "-s", "target", "no-such-subsystem")
		if r.code != 255 || !strings.Contains(r.stderr, "subsystem request failed on channel 0") {
			t.Errorf("%s -s no-such-subsystem: %s", filepath.Base(prog), r)
		}
	}
}
