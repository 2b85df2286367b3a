package agentbridge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh/agent"
)

// noBindAgent is an upstream agent that holds keys and signs but does not
// know session-bind@openssh.com, as 1Password's agent: x/crypto's keyring
// answers SSH_AGENT_FAILURE to every extension.
func noBindAgent(t *testing.T, keys ...*testenv.Key) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: mustRawKey(t, k)}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(testenv.ShareDir(t), "noBind.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, l, func(c net.Conn) { agent.ServeAgent(kr, c) })
	// The fake really does refuse binds.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := agent.NewClient(c).Extension(sessionBindExtension, []byte("x")); !errors.Is(err, agent.ErrExtensionUnsupported) {
		t.Fatalf("fake upstream answered a session-bind with %v, want unsupported", err)
	}
	return sock
}

// --allow-host-key works whether or not the upstream agent supports
// session-bind: the bridge records a bind it verified itself even when the
// upstream answers failure, and passes that answer on (issue 5, the
// session-bind decision).
func TestBindRecordedWhateverUpstreamAnswers(t *testing.T) {
	f := newFixture(t)
	hostA := testenv.NewKey(t, f.dir, "hostA")
	hostB := testenv.NewKey(t, f.dir, "hostB")
	for _, up := range []struct {
		name, sock, result string
		bindOK             bool
	}{
		{"ssh-agent supports binds", f.agent.Sock, "bound", true},
		{"upstream refuses binds", noBindAgent(t, f.k1), "bound by the bridge; upstream refused", false},
	} {
		t.Run(up.name, func(t *testing.T) {
			b := startBridge(t, Config{Upstream: up.sock, AllowUIDs: []uint32{uint32(os.Getuid())}, AllowHostKeys: []string{fp(hostA.PublicKey)}},
				func(b *Bridge) { b.owner = 4242 })
			key := f.k1.PublicKey

			c := client(t, b.sock)
			sid := newSID(t)
			_, err := c.Extension(sessionBindExtension, sessionBindPayload(t, hostA.Signer, hostA.PublicKey, sid, false))
			if (err == nil) != up.bindOK {
				t.Fatalf("session-bind answered %v; the peer must get the upstream's answer (success %v)", err, up.bindOK)
			}
			b.audit.wantAudit(t, map[string]any{"op": "session-bind", "decision": "allowed", "host_key": fp(hostA.PublicKey), "result": up.result})
			data := userauthData(sid, key, hostA.PublicKey)
			sig, err := c.Sign(key, data)
			if err != nil {
				t.Fatalf("sign for the bound, allowed host: %v", err)
			}
			if err := key.Verify(data, sig); err != nil {
				t.Fatal(err)
			}
			b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "allowed", "result": "signed", "host_key": fp(hostA.PublicKey)})
			if _, err := c.Sign(key, userauthData(newSID(t), key, nil)); err == nil {
				t.Error("signed for another session than the bound one")
			}
			// A connection bound for authentication is not bound again, to
			// an allowed host or any other.
			if _, err := c.Extension(sessionBindExtension, sessionBindPayload(t, hostB.Signer, hostB.PublicKey, newSID(t), false)); err == nil {
				t.Error("a second bind on a connection bound for authentication succeeded")
			}
			b.audit.wantAudit(t, map[string]any{"op": "session-bind", "decision": "refused", "reason": "connection already bound for authentication", "host_key": fp(hostB.PublicKey)})

			// A bind to a host not allowed is recorded too, and refuses.
			c2 := client(t, b.sock)
			sidB := newSID(t)
			c2.Extension(sessionBindExtension, sessionBindPayload(t, hostB.Signer, hostB.PublicKey, sidB, false))
			if _, err := c2.Sign(key, userauthData(sidB, key, nil)); err == nil {
				t.Error("signed for a host key not in --allow-host-key")
			}
			b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "refused", "reason": "host key not in --allow-host-key", "host_key": fp(hostB.PublicKey)})

			// A forged bind is still not recorded.
			c3 := client(t, b.sock)
			sid3 := newSID(t)
			c3.Extension(sessionBindExtension, sessionBindPayload(t, hostB.Signer, hostA.PublicKey, sid3, false))
			if _, err := c3.Sign(key, userauthData(sid3, key, nil)); err == nil {
				t.Error("signed after a forged bind")
			}
		})
	}
}

// The real OpenSSH ssh, as uid 65534, logs in through a bridge whose
// upstream does not support session-bind, to an allowed host only.
func TestRealSSHWithUpstreamWithoutBind(t *testing.T) {
	testenv.Need(t, "ssh", "openssh-client")
	dir0 := t.TempDir()
	key := testenv.NewKey(t, dir0, "k")
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{})
	user := testenv.LoginUser(t)
	sshd.Authorize(t, user, key)
	dir := testenv.ShareDir(t)
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(sshd.KnownHostsLine()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := noBindAgent(t, key)
	hostFP := fp(sshd.HostKey.PublicKey)
	for _, tc := range []struct {
		name    string
		allowed string
		ok      bool
	}{
		{"allowed host", hostFP, true},
		{"other host", fp(testenv.NewKey(t, dir0, "other").PublicKey), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBridge(t, Config{Upstream: up, AllowUIDs: []uint32{otherUID}, AllowHostKeys: []string{tc.allowed}}, nil)
			out, _, err := runAsOther(t, []string{"HOME=" + dir}, "ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
				"-o", "UserKnownHostsFile="+kh, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentityAgent="+b.sock,
				"-p", fmt.Sprint(sshd.Port), user+"@127.0.0.1", "echo", "logged-in")
			if got := err == nil && strings.Contains(out, "logged-in"); got != tc.ok {
				t.Fatalf("ssh as uid %d: logged in = %v, want %v (%v)\n%s", otherUID, got, tc.ok, err, out)
			}
			decision := map[bool]string{true: "allowed", false: "refused"}[tc.ok]
			b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": decision, "uid": otherUID, "cmd": "ssh", "host_key": hostFP})
			b.audit.wantAudit(t, map[string]any{"op": "session-bind", "result": "bound by the bridge; upstream refused", "host_key": hostFP})
		})
	}
}
