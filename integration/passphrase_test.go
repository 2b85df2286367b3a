package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/rssh/rssh/internal/testenv"
)

// An encrypted key asks for its passphrase on the terminal (not on the
// session's stdin) once the server has accepted its public key, and never in
// BatchMode.
func TestEncryptedKeyPassphrase(t *testing.T) {
	w := newWorld(t, "", "")
	keygen := testenv.Need(t, "ssh-keygen", "openssh-client")
	enc := filepath.Join(w.dir, "id_encrypted")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "sekrit", "-f", enc).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	w.sshd.Authorize(t, w.user, &testenv.Key{Path: enc, PublicKey: testenv.ReadPub(t, enc+".pub")})
	w.config = w.writeFile("ssh_config", hostBlock("target", w.sshd, w.user, enc, w.knownHosts, ""))

	r := w.rssh(nil, "target", "echo unlocked")
	if r.code != 255 || !strings.Contains(r.stderr, "encrypted") || strings.Contains(r.stderr, "Enter passphrase") {
		t.Fatalf("BatchMode: want a clear refusal and no prompt, got %s", r)
	}

	w.config = w.writeFile("ssh_config", strings.Replace(
		hostBlock("target", w.sshd, w.user, enc, w.knownHosts, ""), "BatchMode yes", "BatchMode no", 1))
	cmd := exec.Command(rsshBin, "-F", w.config, "target", "echo unlocked")
	cmd.Env = w.env
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	out := &syncBuffer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	if !out.WaitFor("Enter passphrase for key '"+enc+"': ", 15*time.Second) {
		t.Fatalf("no passphrase prompt; terminal shows %q", out.String())
	}
	tty.Write([]byte("sekrit\n"))
	if !out.WaitFor("unlocked", 15*time.Second) {
		t.Fatalf("command did not run after the passphrase; terminal shows %q", out.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rssh: %v; terminal shows %q", err, out.String())
	}
	if strings.Contains(out.String(), "sekrit") {
		t.Fatal("the passphrase was echoed")
	}
}

// syncBuffer is the harness buffer, under the name these tests use.
type syncBuffer = testenv.Buffer
