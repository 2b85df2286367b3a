package integration

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// relayWorld is OpenSSH's ssh set up to reach "target" only through
// `-o ProxyCommand='rssh --bridge -F RSSH_CONFIG %h %p'`: ssh's own config has no
// HostName for it, rssh's (given with -F, since like OpenSSH rssh reads
// ~/.ssh/config from the passwd home, not $HOME) says where it is and, with
// a jump host, how to get there.
type relayWorld struct {
	*world
	sshConfig    string // the config OpenSSH's ssh reads
	proxyCommand string // its -o ProxyCommand=…
}

func newRelayWorld(t *testing.T, rsshConfig func(w *world) string) *relayWorld {
	t.Helper()
	w := newWorld(t, "", "")
	rw := &relayWorld{world: w}
	rsshCfg := w.writeFile("rssh_config", rsshConfig(w))
	// ssh knows the target only as "target": its known_hosts line is under
	// that name, and %h is "target".
	kh := w.writeFile("ssh_known_hosts", fmt.Sprintf("[target]:%d %s\n", w.sshd.Port, w.sshd.HostKey.AuthorizedLine()))
	rw.sshConfig = w.writeFile("ssh_only_config", fmt.Sprintf(`Host target
	Port %d
	User %s
	IdentityFile %s
	IdentitiesOnly yes
	UserKnownHostsFile %s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
`, w.sshd.Port, w.user, w.key.Path, kh))
	rw.proxyCommand = fmt.Sprintf("ProxyCommand=%s --bridge -F %s %%h %%p", rsshBin, rsshCfg)
	return rw
}

// sshVia runs OpenSSH's ssh with the ProxyCommand config.
func (rw *relayWorld) sshVia(stdin []byte, args ...string) result {
	rw.t.Helper()
	bin := testenv.Need(rw.t, "ssh", "openssh-client")
	return rw.run(bytes.NewReader(stdin), bin, append([]string{"-F", rw.sshConfig, "-o", rw.proxyCommand}, args...)...)
}

// carry64MiB sends 64 MiB up and, with down, brings it back down through
// ssh over the relay, checking sha256 on both ends.
func (rw *relayWorld) carry64MiB(down bool) {
	rw.t.Helper()
	rw.carry("64 MiB through the relay", 64<<20, down, rw.sshVia)
}

// OpenSSH's ssh logs in with `ProxyCommand rssh --bridge %h %p` and carries
// 64 MiB each way intact; rssh found the address in its own config (issue
// 5, acceptance 4).
func TestRelayDirect(t *testing.T) {
	rw := newRelayWorld(t, func(w *world) string {
		return "Host target\n\tHostName 127.0.0.1\n"
	})
	if r := rw.sshVia(nil, "target", "echo", "via-relay"); r.code != 0 || r.stdout != "via-relay\n" || r.stderr != "" {
		t.Fatalf("ssh through the relay: %s", r)
	}
	rw.carry64MiB(true)
}

// The same through a ProxyJump hop that only rssh's config names: the relay
// authenticates to the hop (host key checked) and opens a direct-tcpip
// channel from there (issue 5, acceptance 4).
func TestRelayThroughProxyJump(t *testing.T) {
	var hop *testenv.SSHD
	rw := newRelayWorld(t, func(w *world) string {
		hop = testenv.StartSSHD(t, testenv.SSHDOptions{})
		hop.Authorize(t, w.user, w.key)
		hopKH := w.writeFile("hop_known_hosts", hop.KnownHostsLine()+"\n")
		return fmt.Sprintf("Host target\n\tHostName 127.0.0.1\n\tProxyJump hop\n\n%s",
			hostBlock("hop", hop, w.user, w.key.Path, hopKH, ""))
	})
	if r := rw.sshVia(nil, "target", "echo", "via-hop"); r.code != 0 || r.stdout != "via-hop\n" || r.stderr != "" {
		t.Fatalf("ssh through the relay and the hop: %s", r)
	}
	want := fmt.Sprintf("to 127.0.0.1 port %d", rw.sshd.Port)
	if log := hop.Log(); !strings.Contains(log, "direct-tcpip") || !strings.Contains(log, want) {
		t.Fatalf("the hop's sshd log shows no direct-tcpip channel %s", want)
	}
	rw.carry64MiB(false)

	// A hop whose host key is not the known one stops the relay before it
	// authenticates: exit 255, the reason on stderr, nothing on stdout.
	rw.writeFile("hop_known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n", hop.Port, rw.key.AuthorizedLine()))
	r := rw.run(bytes.NewReader(nil), rsshBin, "--bridge", "-F", filepath.Join(rw.dir, "rssh_config"), "target", fmt.Sprint(rw.sshd.Port))
	if r.code != 255 || r.stdout != "" || !strings.Contains(r.stderr, "rssh: ") || !strings.Contains(r.stderr, "HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("relay through a hop with a changed key: %s", r)
	}
}

// The relay itself: no byte of its own on stdout (what comes out is the
// server's, starting with its banner), stdin's EOF passed on as a
// half-close (sshd then ends and so does the relay), errors on stderr with
// exit 255, and a warning when SSH_AUTH_SOCK names a dead agent (issue 5,
// the relay's contract).
func TestRelayStdioContract(t *testing.T) {
	w := newWorld(t, "", "")
	port := fmt.Sprint(w.sshd.Port)

	done := make(chan result, 1)
	go func() { done <- w.run(bytes.NewReader(nil), rsshBin, "--bridge", "127.0.0.1", port) }()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not end after stdin's EOF and the server's close")
	}
	if r.code != 0 || !strings.HasPrefix(r.stdout, "SSH-2.0-OpenSSH") || r.stderr != "" {
		t.Fatalf("relay with empty stdin: want the server's banner only and exit 0, got %s", r)
	}

	dead := deadPort(t)
	r = w.run(nil, rsshBin, "--bridge", "127.0.0.1", fmt.Sprint(dead))
	if r.code != 255 || r.stdout != "" || !strings.HasPrefix(r.stderr, fmt.Sprintf("rssh: connect to host 127.0.0.1 port %d: ", dead)) {
		t.Fatalf("relay to a dead port: %s", r)
	}
	r = w.run(nil, rsshBin, "--bridge", "127.0.0.1", "http")
	if r.code != 255 || r.stdout != "" || !strings.HasPrefix(r.stderr, "rssh: bad port \"http\"") {
		t.Fatalf("relay with a bad port: %s", r)
	}

	env := w.env
	w.env = append(append([]string{}, env...), "SSH_AUTH_SOCK="+filepath.Join(w.dir, "no-bridge.sock"))
	r = w.run(bytes.NewReader(nil), rsshBin, "--bridge", "127.0.0.1", port)
	w.env = env
	if r.code != 0 || !strings.HasPrefix(r.stdout, "SSH-2.0-OpenSSH") ||
		!strings.Contains(r.stderr, "rssh: warning: the agent at SSH_AUTH_SOCK=") || !strings.Contains(r.stderr, "rssh: hint: ") {
		t.Fatalf("relay with a dead SSH_AUTH_SOCK: want a warning on stderr only, got %s", r)
	}
}
