package agentbridge

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// fixture is an upstream ssh-agent holding two ed25519 keys and an RSA key.
type fixture struct {
	agent        *testenv.Agent
	dir          string
	k1, k2, kRSA *testenv.Key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.Need(t, "ssh-add", "openssh-client")
	f := &fixture{agent: testenv.StartAgent(t), dir: t.TempDir()}
	f.k1 = testenv.NewKey(t, f.dir, "k1")
	f.k2 = testenv.NewKey(t, f.dir, "k2")
	f.kRSA = newRSAKey(t, f.dir, "krsa")
	f.agent.Add(t, f.k1, f.k2, f.kRSA)
	return f
}

func (f *fixture) all() []string {
	return []string{fp(f.k1.PublicKey), fp(f.k2.PublicKey), fp(f.kRSA.PublicKey)}
}

// The owner lists with the real ssh-add and signs, RSA flags included, and is
// not restricted by --allow-key or --allow-host-key (acceptance 1, 2).
func TestOwnerListsAndSigns(t *testing.T) {
	f := newFixture(t)
	unrelated := fp(testenv.NewKey(t, f.dir, "unrelated").PublicKey)
	b := startBridge(t, Config{Upstream: f.agent.Sock, AllowKeys: []string{unrelated}, AllowHostKeys: []string{unrelated}}, nil)

	out, _, err := run(t, []string{"SSH_AUTH_SOCK=" + b.sock}, "ssh-add", "-l")
	if err != nil {
		t.Fatalf("ssh-add -l through the bridge: %v\n%s", err, out)
	}
	for _, want := range f.all() {
		if !strings.Contains(out, want) {
			t.Errorf("ssh-add -l through the bridge lacks %s:\n%s", want, out)
		}
	}

	c := client(t, b.sock)
	data := []byte("owner signs this")
	sig, err := c.Sign(f.k1.PublicKey, data)
	if err != nil {
		t.Fatalf("sign through the bridge: %v", err)
	}
	if err := f.k1.PublicKey.Verify(data, sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	for flag, format := range map[agent.SignatureFlags]string{
		agent.SignatureFlagRsaSha256: ssh.KeyAlgoRSASHA256,
		agent.SignatureFlagRsaSha512: ssh.KeyAlgoRSASHA512,
	} {
		sig, err := c.SignWithFlags(f.kRSA.PublicKey, data, flag)
		if err != nil {
			t.Fatalf("RSA sign with flags %d: %v", flag, err)
		}
		if sig.Format != format {
			t.Errorf("flags %d gave a %s signature, want %s", flag, sig.Format, format)
		}
		if err := f.kRSA.PublicKey.Verify(data, sig); err != nil {
			t.Errorf("RSA signature does not verify: %v", err)
		}
	}
	b.audit.wantAudit(t, map[string]any{
		"msg": "audit", "op": "sign", "decision": "allowed", "result": "signed", "reason": "owner",
		"uid": os.Getuid(), "pid": os.Getpid(), "cmd": selfComm(t), "key": fp(f.k1.PublicKey),
	})
	b.audit.wantAudit(t, map[string]any{"op": "sign", "key": fp(f.kRSA.PublicKey), "flags": int(agent.SignatureFlagRsaSha512)})
}

// Another user is refused unless allowed, and then sees only --allow-key
// keys (acceptance 1, 2).
func TestOtherUserRefusedUnlessAllowed(t *testing.T) {
	f := newFixture(t)

	t.Run("refused by default", func(t *testing.T) {
		b := startBridge(t, Config{Upstream: f.agent.Sock}, nil)
		out, cmd, err := runAsOther(t, []string{"SSH_AUTH_SOCK=" + b.sock}, "ssh-add", "-l")
		if err == nil {
			t.Fatalf("ssh-add -l as uid %d succeeded through a bridge that does not allow it:\n%s", otherUID, out)
		}
		b.audit.wantAudit(t, map[string]any{
			"op": "connect", "decision": "refused", "uid": otherUID,
			"pid": cmd.Process.Pid, "cmd": "ssh-add", "reason": "uid 65534 is not allowed",
		})
	})

	t.Run("allowed sees allowed keys only", func(t *testing.T) {
		b := startBridge(t, Config{Upstream: f.agent.Sock, AllowUIDs: []uint32{otherUID}, AllowKeys: []string{fp(f.k1.PublicKey)}}, nil)
		out, cmd, err := runAsOther(t, []string{"SSH_AUTH_SOCK=" + b.sock}, "ssh-add", "-l")
		if err != nil {
			t.Fatalf("ssh-add -l as allowed uid %d: %v\n%s", otherUID, err, out)
		}
		if !strings.Contains(out, fp(f.k1.PublicKey)) || strings.Contains(out, fp(f.k2.PublicKey)) || strings.Contains(out, fp(f.kRSA.PublicKey)) {
			t.Errorf("uid %d should see only k1 (%s):\n%s", otherUID, fp(f.k1.PublicKey), out)
		}
		b.audit.wantAudit(t, map[string]any{"op": "list", "uid": otherUID, "pid": cmd.Process.Pid, "cmd": "ssh-add", "keys": 1, "hidden": 2})

		// The owner of the same bridge still sees everything.
		out, _, err = run(t, []string{"SSH_AUTH_SOCK=" + b.sock}, "ssh-add", "-l")
		if err != nil || !strings.Contains(out, fp(f.k2.PublicKey)) {
			t.Errorf("owner should see every key: %v\n%s", err, out)
		}
	})
}

// A non-owner peer may sign with --allow-key keys only (acceptance 1).
func TestNonOwnerSignsAllowedKeysOnly(t *testing.T) {
	f := newFixture(t)
	b := startBridge(t, Config{Upstream: f.agent.Sock, AllowUIDs: []uint32{uint32(os.Getuid())}, AllowKeys: []string{fp(f.k1.PublicKey)}},
		func(b *Bridge) { b.owner = 4242 }) // the test process is now an allowed non-owner
	c := client(t, b.sock)
	keys, err := c.List()
	if err != nil || len(keys) != 1 || fp(keys[0]) != fp(f.k1.PublicKey) {
		t.Fatalf("non-owner list = %v, %v; want only k1", keys, err)
	}
	if _, err := c.Sign(f.k1.PublicKey, []byte("x")); err != nil {
		t.Errorf("sign with allowed key: %v", err)
	}
	if _, err := c.Sign(f.k2.PublicKey, []byte("x")); err == nil {
		t.Errorf("sign with a key not in --allow-key succeeded")
	}
	b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "refused", "key": fp(f.k2.PublicKey), "reason": "key not in --allow-key"})
}

// Add, remove, remove-all, lock, unlock, other extensions and the v1
// protocol are refused for the owner too and change nothing upstream
// (acceptance 1).
func TestMutationsAreNotForwarded(t *testing.T) {
	f := newFixture(t)
	b := startBridge(t, Config{Upstream: f.agent.Sock}, nil)
	before := upstreamKeys(t, f.agent.Sock)
	k3 := testenv.NewKey(t, f.dir, "k3")

	dir := testenv.ShareDir(t)
	askpass := filepath.Join(dir, "askpass")
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho lockpw\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"SSH_AUTH_SOCK=" + b.sock, "SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0", "HOME=" + dir}
	for _, args := range [][]string{{"-D"}, {k3.Path}, {"-d", f.k1.Path + ".pub"}, {"-x"}, {"-X"}} {
		out, _, err := run(t, env, "ssh-add", args...)
		if err == nil {
			t.Errorf("ssh-add %v through the bridge succeeded:\n%s", args, out)
		}
	}

	c := client(t, b.sock)
	if err := c.RemoveAll(); err == nil {
		t.Error("RemoveAll succeeded")
	}
	if err := c.Remove(f.k1.PublicKey); err == nil {
		t.Error("Remove succeeded")
	}
	if err := c.Add(agent.AddedKey{PrivateKey: mustRawKey(t, k3)}); err == nil {
		t.Error("Add succeeded")
	}
	if err := c.Lock([]byte("pw")); err == nil {
		t.Error("Lock succeeded")
	}
	if err := c.Unlock([]byte("pw")); err == nil {
		t.Error("Unlock succeeded")
	}
	if _, err := c.Extension("query", nil); err == nil {
		t.Error("the query extension was forwarded")
	}

	// The v1 protocol and unknown types get a failure reply on a connection
	// that stays usable.
	raw, err := net.Dial("unix", b.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, typ := range []byte{1, 3, 7, 8, 9, 20, 21, 24, 25, 26, 99, 255} {
		if _, err := raw.Write(frame([]byte{typ})); err != nil {
			t.Fatal(err)
		}
		reply, err := readMessage(raw, 1024)
		if err != nil || !bytes.Equal(reply, []byte{msgFailure}) {
			t.Errorf("type %d: reply %v, %v; want SSH_AGENT_FAILURE", typ, reply, err)
		}
	}

	after := upstreamKeys(t, f.agent.Sock) // a locked agent lists nothing
	if strings.Join(before, ",") != strings.Join(after, ",") {
		t.Errorf("upstream keys changed through the bridge:\nbefore %v\nafter  %v", before, after)
	}
	for _, op := range []string{"remove-all", "add", "remove", "lock", "unlock"} {
		b.audit.wantAudit(t, map[string]any{"op": op, "decision": "refused", "uid": os.Getuid()})
	}
	b.audit.wantAudit(t, map[string]any{"op": "extension", "decision": "refused", "extension": "query"})
}

func mustRawKey(t *testing.T, k *testenv.Key) any {
	t.Helper()
	b, err := os.ReadFile(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// sessionBindPayload is a valid session-bind@openssh.com body: the host key
// signs the session identifier, as a server does in its key exchange.
func sessionBindPayload(t testing.TB, host ssh.Signer, claimed ssh.PublicKey, sid []byte, forwarding bool) []byte {
	t.Helper()
	sig, err := host.Sign(rand.Reader, sid)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Marshal(struct {
		HostKey, SessionID, Signature []byte
		Forwarding                    bool
	}{claimed.Marshal(), sid, ssh.Marshal(sig), forwarding})
}

// userauthData is what ssh asks its agent to sign to log in (RFC 4252 7),
// in OpenSSH's host-bound form when hostKey is not nil.
func userauthData(sid []byte, key ssh.PublicKey, hostKey ssh.PublicKey) []byte {
	type base struct {
		SessionID []byte
		Type      byte
		User      string
		Service   string
		Method    string
		HasSig    bool
		Algo      string
		Key       []byte
	}
	b := base{sid, sshMsgUserauthRequest, "builder", "ssh-connection", "publickey", true, key.Type(), key.Marshal()}
	if hostKey == nil {
		return ssh.Marshal(b)
	}
	b.Method = "publickey-hostbound-v00@openssh.com"
	return append(ssh.Marshal(b), ssh.Marshal(struct{ H []byte }{hostKey.Marshal()})...)
}

func newSID(t testing.TB) []byte {
	sid := make([]byte, 32)
	rand.Read(sid)
	return sid
}

// --allow-host-key: a non-owner may sign only the authentication request of
// a session bound to an allowed host key (acceptance 1, 2).
func TestDestinationRestriction(t *testing.T) {
	f := newFixture(t)
	hostA := testenv.NewKey(t, f.dir, "hostA")
	hostB := testenv.NewKey(t, f.dir, "hostB")
	b := startBridge(t, Config{Upstream: f.agent.Sock, AllowUIDs: []uint32{uint32(os.Getuid())}, AllowHostKeys: []string{fp(hostA.PublicKey)}},
		func(b *Bridge) { b.owner = 4242 })
	key := f.k1.PublicKey

	t.Run("no bind", func(t *testing.T) {
		c := client(t, b.sock)
		if _, err := c.Sign(key, userauthData(newSID(t), key, nil)); err == nil {
			t.Fatal("signed with no session-bind")
		}
		b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "refused", "key": fp(key), "reason": "no session-bind*"})
	})

	t.Run("allowed host", func(t *testing.T) {
		c := client(t, b.sock)
		sid := newSID(t)
		if _, err := c.Extension(sessionBindExtension, sessionBindPayload(t, hostA.Signer, hostA.PublicKey, sid, false)); err != nil {
			t.Fatalf("session-bind to an allowed host: %v", err)
		}
		for _, data := range [][]byte{userauthData(sid, key, nil), userauthData(sid, key, hostA.PublicKey)} {
			sig, err := c.Sign(key, data)
			if err != nil {
				t.Fatalf("sign for the bound, allowed host: %v", err)
			}
			if err := key.Verify(data, sig); err != nil {
				t.Fatal(err)
			}
		}
		// The acceptance item's audit fields, all on one line.
		b.audit.wantAudit(t, map[string]any{
			"msg": "audit", "op": "sign", "decision": "allowed", "result": "signed",
			"uid": os.Getuid(), "pid": os.Getpid(), "cmd": selfComm(t),
			"key": fp(key), "host_key": fp(hostA.PublicKey),
		})
		b.audit.wantAudit(t, map[string]any{"op": "session-bind", "decision": "allowed", "result": "bound", "host_key": fp(hostA.PublicKey)})

		// A bind to the allowed host does not sign for another session,
		// another key, another host, or arbitrary data.
		for name, data := range map[string][]byte{
			"another session": userauthData(newSID(t), key, nil),
			"another host":    userauthData(sid, key, hostB.PublicKey),
			"another key":     userauthData(sid, f.k2.PublicKey, nil),
			"arbitrary data":  []byte("not a userauth request"),
		} {
			if _, err := c.Sign(key, data); err == nil {
				t.Errorf("%s: signed", name)
			}
		}
		b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "refused", "reason": "data is for another session*", "host_key": fp(hostA.PublicKey)})
	})

	t.Run("other host", func(t *testing.T) {
		c := client(t, b.sock)
		sid := newSID(t)
		if _, err := c.Extension(sessionBindExtension, sessionBindPayload(t, hostB.Signer, hostB.PublicKey, sid, false)); err != nil {
			t.Fatalf("session-bind: %v", err)
		}
		if _, err := c.Sign(key, userauthData(sid, key, nil)); err == nil {
			t.Fatal("signed for a host key not in --allow-host-key")
		}
		b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "refused", "reason": "host key not in --allow-host-key", "host_key": fp(hostB.PublicKey)})
	})

	t.Run("forged bind", func(t *testing.T) {
		c := client(t, b.sock)
		sid := newSID(t)
		// Signed by host B, claiming host A: neither the bridge nor the agent
		// takes it, and the connection stays unbound.
		if _, err := c.Extension(sessionBindExtension, sessionBindPayload(t, hostB.Signer, hostA.PublicKey, sid, false)); err == nil {
			t.Fatal("a forged session-bind was accepted")
		}
		if _, err := c.Sign(key, userauthData(sid, key, nil)); err == nil {
			t.Fatal("signed after a forged bind")
		}
		b.audit.wantAudit(t, map[string]any{"op": "session-bind", "decision": "refused", "reason": "signature*"})
	})

	t.Run("forwarding bind", func(t *testing.T) {
		c := client(t, b.sock)
		sid := newSID(t)
		if _, err := c.Extension(sessionBindExtension, sessionBindPayload(t, hostA.Signer, hostA.PublicKey, sid, true)); err != nil {
			t.Fatalf("session-bind: %v", err)
		}
		if _, err := c.Sign(key, userauthData(sid, key, nil)); err == nil {
			t.Fatal("signed on a connection bound for forwarding")
		}
	})
}

// The real OpenSSH ssh logs in through the bridge: as the owner, and as
// uid 65534 with an allowed key to an allowed host key, but not to a host
// whose key is not allowed (acceptance 1, 2).
func TestRealSSHThroughBridge(t *testing.T) {
	testenv.Need(t, "ssh", "openssh-client")
	f := newFixture(t)
	sshd := testenv.StartSSHD(t, testenv.SSHDOptions{})
	user := testenv.LoginUser(t)
	sshd.Authorize(t, user, f.k1)
	dir := testenv.ShareDir(t)
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(sshd.KnownHostsLine()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sshArgs := func(sock string) []string {
		return []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "IdentityAgent=" + sock, "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
			"-p", fmt.Sprint(sshd.Port), user + "@127.0.0.1", "echo", "logged-in"}
	}
	env := []string{"HOME=" + dir}
	hostFP := fp(sshd.HostKey.PublicKey)

	t.Run("owner", func(t *testing.T) {
		b := startBridge(t, Config{Upstream: f.agent.Sock}, nil)
		out, _, err := run(t, env, "ssh", sshArgs(b.sock)...)
		if err != nil || !strings.Contains(out, "logged-in") {
			t.Fatalf("owner ssh through the bridge: %v\n%s", err, out)
		}
		b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "allowed", "result": "signed", "uid": os.Getuid(), "cmd": "ssh", "key": fp(f.k1.PublicKey), "host_key": hostFP})
	})

	t.Run("other user, allowed host", func(t *testing.T) {
		b := startBridge(t, Config{Upstream: f.agent.Sock, AllowUIDs: []uint32{otherUID},
			AllowKeys: []string{fp(f.k1.PublicKey)}, AllowHostKeys: []string{hostFP}}, nil)
		out, cmd, err := runAsOther(t, env, "ssh", sshArgs(b.sock)...)
		if err != nil || !strings.Contains(out, "logged-in") {
			t.Fatalf("uid %d ssh through the bridge to an allowed host: %v\n%s", otherUID, err, out)
		}
		b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "allowed", "result": "signed",
			"uid": otherUID, "pid": cmd.Process.Pid, "cmd": "ssh", "key": fp(f.k1.PublicKey), "host_key": hostFP})
	})

	t.Run("other user, other host", func(t *testing.T) {
		other := fp(testenv.NewKey(t, f.dir, "otherhost").PublicKey)
		b := startBridge(t, Config{Upstream: f.agent.Sock, AllowUIDs: []uint32{otherUID}, AllowHostKeys: []string{other}}, nil)
		out, _, err := runAsOther(t, env, "ssh", sshArgs(b.sock)...)
		if err == nil {
			t.Fatalf("uid %d logged in to a host whose key is not in --allow-host-key:\n%s", otherUID, out)
		}
		b.audit.wantAudit(t, map[string]any{"op": "sign", "decision": "refused", "uid": otherUID, "cmd": "ssh",
			"reason": "host key not in --allow-host-key", "host_key": hostFP})
	})
}
