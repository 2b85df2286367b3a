package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/internal/testenv"
)

// A ProxyJump hop with a live master goes through it, as OpenSSH's
// `ssh -W next hop` child does: the hop's sshd sees no new login, the
// master opens a stdio forward to the next host, and the destination's
// session is made end to end by this rssh over that stream.

// hopMuxWorld is a world whose "target" is reached through "jump", a
// second sshd whose Host block has a ControlPath (with %C, so the master
// and the hop compute it from the same config).
type hopMuxWorld struct {
	*world
	jump *testenv.SSHD
	ctl  string // the jump's ControlPath, expanded
}

func newHopMuxWorld(t *testing.T, targetExtra string) *hopMuxWorld {
	t.Helper()
	w := newWorld(t, "", "")
	hw := &hopMuxWorld{world: w, jump: testenv.StartSSHD(t, testenv.SSHDOptions{})}
	hw.jump.Authorize(t, w.user, w.key)
	w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n"+hw.jump.KnownHostsLine()+"\n")
	dir := sockDir(t)
	w.config = w.writeFile("ssh_config",
		hostBlock("target", w.sshd, w.user, w.key.Path, w.knownHosts, targetExtra)+
			hostBlock("jump", hw.jump, w.user, w.key.Path, w.knownHosts, "\tControlPath "+dir+"/%C"))
	hw.ctl = hw.controlPath(t)
	return hw
}

// controlPath is the jump's ControlPath as ssh -G prints it; rssh -G must
// agree, or the two could not share a master.
func (hw *hopMuxWorld) controlPath(t *testing.T) string {
	t.Helper()
	p := controlPathOf(t, hw.world, hw.config, "jump")
	if q := dumpControlPath(t, hw.ssh(nil, "-G", "jump")); q != p {
		t.Fatalf("ControlPath: rssh -G %q, ssh -G %q", p, q)
	}
	return p
}

// controlPathOf is host's ControlPath as rssh -F config -G prints it.
func controlPathOf(t *testing.T, w *world, config, host string) string {
	t.Helper()
	return dumpControlPath(t, w.run(nil, rsshBin, "-F", config, "-G", host))
}

func dumpControlPath(t *testing.T, r result) string {
	t.Helper()
	for _, l := range strings.Split(r.stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "controlpath "); ok {
			return v
		}
	}
	t.Fatalf("no controlpath in -G: %s", r)
	return ""
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startMaster starts a master to the jump host (rssh's or OpenSSH's, at
// -v) and waits for its socket.
func (hw *hopMuxWorld) startMaster(t *testing.T, program string) *testenv.Buffer {
	t.Helper()
	_, mlog, exited := hw.background(program, "-F", hw.config, "-M", "-N", "-v", "jump")
	waitSock(t, hw.ctl, exited, mlog)
	return mlog
}

func logins(s *testenv.SSHD) int { return strings.Count(s.Log(), "Accepted publickey") }

// waitLog polls a log until it contains want (a master may log a stdio
// forward a moment after its client is done).
func waitLog(t *testing.T, what string, log func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q:\n%s", what, want, log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// masterStdioLine is what each master says at -v when it opens a stdio
// forward: rssh's mux server its own line, OpenSSH its channel's name.
func masterStdioLine(program string, port int) string {
	if program == rsshBin {
		return fmt.Sprintf("mux: stdio fwd to 127.0.0.1:%d", port)
	}
	return "[stdio-forward]"
}

// Issue 12 (the relay and other connections reuse a live master), (a) and
// (b): `rssh -J jump target` and `rssh target` with ProxyJump in its
// config go through an rssh master and an OpenSSH master to the jump host;
// the jump sshd sees no new login, the destination one login each.
func TestHopMuxProxyJumpThroughMaster(t *testing.T) {
	for _, m := range []struct{ name, program string }{{"rssh", rsshBin}, {"openssh", ""}} {
		t.Run(m.name, func(t *testing.T) {
			hw := newHopMuxWorld(t, "")
			program := m.program
			if program == "" {
				program = hw.sshBin()
			}
			mlog := hw.startMaster(t, program)
			if n := logins(hw.jump); n != 1 {
				t.Fatalf("%d logins on the jump host for its master", n)
			}
			r := hw.rssh(strings.NewReader("hi"), "-v", "-J", "jump", "target", shareCmd)
			if r.code != 3 || r.stdout != "out:hi\n" || !strings.Contains(r.stderr, "err line\n") {
				t.Fatalf("rssh -J jump through the master: %s", r)
			}
			if !strings.Contains(r.stderr, "jump host jump: stdio forward to 127.0.0.1:"+fmt.Sprint(hw.sshd.Port)+" through the master at "+hw.ctl) {
				t.Fatalf("rssh -v does not say it went through the master: %s", r)
			}
			waitLog(t, "the master", mlog.String, masterStdioLine(program, hw.sshd.Port))

			hw.config = hw.writeFile("ssh_config", strings.Replace(readFile(t, hw.config),
				"Host target\n", "Host target\n\tProxyJump jump\n", 1))
			if r := hw.rssh(nil, "target", "echo", "via-config"); r.code != 0 || r.stdout != "via-config\n" || r.stderr != "" {
				t.Fatalf("rssh target with ProxyJump jump through the master: %s", r)
			}
			// -W and -N go through the same chain.
			if r := hw.rssh(nil, "-W", "127.0.0.1:"+fmt.Sprint(hw.sshd.Port), "target"); r.code != 0 || !strings.HasPrefix(r.stdout, "SSH-2.0-OpenSSH") {
				t.Fatalf("rssh -W through the jump's master: %s", r)
			}
			if n := logins(hw.jump); n != 1 {
				t.Fatalf("the jump host saw %d logins: the hops did not go through its master", n)
			}
			if n := logins(hw.sshd); n != 3 {
				t.Fatalf("the destination saw %d logins for 3 sessions", n)
			}
			// OpenSSH's ssh does the same with this config: no new login on
			// the jump host either.
			if r := hw.ssh(nil, "target", "echo", "ssh-too"); r.code != 0 || r.stdout != "ssh-too\n" {
				t.Fatalf("ssh through the same master: %s", r)
			}
			if n := logins(hw.jump); n != 1 {
				t.Fatalf("OpenSSH's ssh made a login on the jump host (%d): the test's premise is wrong", n)
			}
		})
	}
}

// A chain of two hops, a master to the first only: the first is not
// dialed, the second is, over the master's stream; with masters to both,
// the last one carries the stream and neither hop sees a login.
func TestHopMuxTwoHopChain(t *testing.T) {
	hw := newHopMuxWorld(t, "\tProxyJump jump,jump2")
	jump2 := testenv.StartSSHD(t, testenv.SSHDOptions{})
	jump2.Authorize(t, hw.user, hw.key)
	hw.writeFile("known_hosts", readFile(t, hw.knownHosts)+jump2.KnownHostsLine()+"\n")
	dir := filepath.Dir(hw.ctl)
	hw.config = hw.writeFile("ssh_config", readFile(t, hw.config)+
		hostBlock("jump2", jump2, hw.user, hw.key.Path, hw.knownHosts, "\tControlPath "+dir+"/j2-%C"))
	mlog := hw.startMaster(t, rsshBin)
	if r := hw.rssh(nil, "target", "echo", "two-hops"); r.code != 0 || r.stdout != "two-hops\n" {
		t.Fatalf("through jump's master and jump2: %s", r)
	}
	waitLog(t, "jump's master", mlog.String, fmt.Sprintf("mux: stdio fwd to 127.0.0.1:%d", jump2.Port))
	if a, b := logins(hw.jump), logins(jump2); a != 1 || b != 1 {
		t.Fatalf("logins: jump %d (its master only), jump2 %d", a, b)
	}

	// A master to jump2 too (itself through jump's master): the last hop's
	// master carries the stream to the destination.
	_, m2log, exited := hw.background(rsshBin, "-F", hw.config, "-M", "-N", "-v", "-J", "jump", "jump2")
	waitSock(t, controlPathOf(t, hw.world, hw.config, "jump2"), exited, m2log)
	if r := hw.rssh(nil, "target", "echo", "last-master"); r.code != 0 || r.stdout != "last-master\n" {
		t.Fatalf("through jump2's master: %s", r)
	}
	waitLog(t, "jump2's master", m2log.String, fmt.Sprintf("mux: stdio fwd to 127.0.0.1:%d", hw.sshd.Port))
	if a, b := logins(hw.jump), logins(jump2); a != 1 || b != 2 {
		t.Fatalf("logins: jump %d, jump2 %d (want 1 and 2: the masters' own)", a, b)
	}
}

// (c) A stale socket at the jump's ControlPath: the hop is dialed as if
// there were none, and the session works. As OpenSSH with ControlMaster
// no (the default), the socket is named on stderr and left in place.
func TestHopMuxStaleSocket(t *testing.T) {
	hw := newHopMuxWorld(t, "\tProxyJump jump")
	l, err := net.Listen("unix", hw.ctl)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	r := hw.rssh(nil, "target", "echo", "fell-back")
	if r.code != 0 || r.stdout != "fell-back\n" {
		t.Fatalf("with a stale socket at the jump's ControlPath: %s", r)
	}
	want := fmt.Sprintf("control socket connect(%s): Connection refused", hw.ctl)
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("rssh does not name the stale socket: %s", r)
	}
	s := hw.ssh(nil, "target", "echo", "fell-back")
	if s.code != 0 || s.stdout != r.stdout || !strings.Contains(strings.ToLower(s.stderr), strings.ToLower(want)) {
		t.Fatalf("OpenSSH with the same stale socket: %s\nrssh: %s", s, r)
	}
	if n := logins(hw.jump); n != 2 {
		t.Fatalf("%d logins on the jump host for two direct hops", n)
	}
}

// (d) OpenSSH's ssh with `ProxyCommand rssh --bridge -F cfg %h %p`, the
// destination behind the jump host: the relay goes through the jump's
// live master; output and exit status as without it, no login on the jump.
func TestHopMuxRelay(t *testing.T) {
	var jump *testenv.SSHD
	var ctlDir string
	rw := newRelayWorld(t, func(w *world) string {
		jump = testenv.StartSSHD(t, testenv.SSHDOptions{})
		jump.Authorize(t, w.user, w.key)
		hopKH := w.writeFile("hop_known_hosts", jump.KnownHostsLine()+"\n")
		ctlDir = sockDir(t)
		return fmt.Sprintf("Host target\n\tHostName 127.0.0.1\n\tProxyJump jump\n\n%s",
			hostBlock("jump", jump, w.user, w.key.Path, hopKH, "\tControlPath "+ctlDir+"/%C"))
	})
	rsshCfg := filepath.Join(rw.dir, "rssh_config")
	_, mlog, exited := rw.background(rsshBin, "-F", rsshCfg, "-M", "-N", "-v", "jump")
	waitSock(t, controlPathOf(t, rw.world, rsshCfg, "jump"), exited, mlog)

	r := rw.sshVia([]byte("hi"), "target", shareCmd)
	if r.code != 3 || r.stdout != "out:hi\n" || r.stderr != "err line\n" {
		t.Fatalf("ssh through the relay and the jump's master: %s", r)
	}
	waitLog(t, "the master", mlog.String, fmt.Sprintf("mux: stdio fwd to 127.0.0.1:%d", rw.sshd.Port))
	rw.carry64MiB(false)
	if n := logins(jump); n != 1 {
		t.Fatalf("the jump host saw %d logins: the relay did not use its master", n)
	}
}

// (e) The token rule through a jump's master: the destination's session,
// its env requests and token included, is made end to end by rssh over
// the master's stream. An OpenSSH master (whose SendEnv would drop the
// token from a session of its own) carries it as well as rssh's.
func TestHopMuxToken(t *testing.T) {
	for _, m := range []struct{ name, program string }{{"rssh", rsshBin}, {"openssh", ""}} {
		t.Run(m.name, func(t *testing.T) {
			w := newTokenWorld(t, testenv.SSHDOptions{}, false)
			jump := testenv.StartSSHD(t, testenv.SSHDOptions{})
			jump.Authorize(t, w.user, w.key)
			w.writeFile("known_hosts", w.sshd.KnownHostsLine()+"\n"+jump.KnownHostsLine()+"\n")
			dir := sockDir(t)
			w.config = w.writeFile("ssh_config",
				hostBlock("prod", w.sshd, w.user, w.key.Path, w.knownHosts, "\tSetEnv RSSH_ENV=production\n\tProxyJump jump")+
					hostBlock("jump", jump, w.user, w.key.Path, w.knownHosts, "\tControlPath "+dir+"/%C"))
			program := m.program
			if program == "" {
				program = w.sshBin()
			}
			_, mlog, exited := w.background(program, "-F", w.config, "-M", "-N", "-v", "jump")
			waitSock(t, controlPathOf(t, w.world, w.config, "jump"), exited, mlog)

			r := w.rssh(nil, "prod", showEnv)
			if want := w.op.Tokens["production"] + "|production||\n"; r.code != 0 || r.stdout != want {
				t.Fatalf("token through the jump's master: want %q, got %s", want, r)
			}
			waitLog(t, "the master", mlog.String, masterStdioLine(program, w.sshd.Port))
			if n := logins(jump); n != 1 {
				t.Fatalf("the jump host saw %d logins: the hop did not use its master", n)
			}
			// The master never saw the token: it is nowhere in its log.
			if strings.Contains(mlog.String(), w.op.Tokens["production"]) {
				t.Fatal("the token appears in the jump master's log")
			}
			w.op.CheckArgv(t)
		})
	}
}

// A master that refuses the forward (ControlMaster ask, its askpass says
// no) is passed over: the hop is dialed and the session works. (OpenSSH's
// ssh -W child dies there instead: "Master refused stdio forwarding
// request"; rssh connects as if there were no master.)
func TestHopMuxRefused(t *testing.T) {
	hw := newHopMuxWorld(t, "\tProxyJump jump")
	env := hw.env
	hw.env = append(append([]string{}, env...), "SSH_ASKPASS=/bin/false")
	_, mlog, exited := hw.background(rsshBin, "-F", hw.config, "-M", "-M", "-N", "jump")
	hw.env = env
	waitSock(t, hw.ctl, exited, mlog)
	r := hw.rssh(nil, "-v", "target", "echo", "direct")
	if r.code != 0 || r.stdout != "direct\n" {
		t.Fatalf("with a master that refuses: %s", r)
	}
	if !strings.Contains(r.stderr, "jump host jump: the master at "+hw.ctl+" did not open ") {
		t.Fatalf("rssh -v does not say the master refused: %s", r)
	}
	if n := logins(hw.jump); n != 2 {
		t.Fatalf("%d logins on the jump host: want the master's and the fallback's", n)
	}
	// The deliberate difference, kept in view.
	if s := hw.ssh(nil, "target", "echo", "direct"); s.code != 255 || !strings.Contains(s.stderr, "Master refused stdio forwarding request") {
		t.Fatalf("OpenSSH no longer dies on a refused hop forward: %s", s)
	}
}

// The jump's master killed under a running session: the session's stream
// ends with it and rssh exits 255 at once, as when its direct hop dies.
func TestHopMuxMasterKilled(t *testing.T) {
	hw := newHopMuxWorld(t, "\tProxyJump jump")
	master, mlog, exited := hw.background(rsshBin, "-F", hw.config, "-M", "-N", "jump")
	waitSock(t, hw.ctl, exited, mlog)
	p := hw.start("target", "echo started; sleep 60")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stdout.String(), "started") {
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("the session did not start: %s", p.err.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	master.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("rssh hung after the jump's master went away")
	}
	if p.code != 255 {
		t.Fatalf("exit %d, want 255; stderr %q", p.code, p.err.String())
	}
}
