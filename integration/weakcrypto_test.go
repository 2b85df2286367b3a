package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

// OpenSSH 10.1's warn_nonpq_kex, word for word.
const weakKexWarning = `** WARNING: connection is not using a post-quantum key exchange algorithm.
** This session may be vulnerable to "store now, decrypt later" attacks.
** The server may need to be upgraded. See https://openssh.com/pq.html
`

// Against OpenSSH 9.2's sshd rssh negotiates curve25519 (the server's
// post-quantum sntrup761x25519 is not in x/crypto), so it warns as OpenSSH
// 10.1 does, unless WarnWeakCrypto is off, the log level hides warnings,
// or the user chose KexAlgorithms.
func TestWeakKexWarningAgainstSSHD92(t *testing.T) {
	w := newWorld(t, "", "")
	// A config with WarnWeakCrypto at its default (the world's turns it off).
	plain := w.writeFile("plain_config", fmt.Sprintf("Host target\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n"+
		"\tIdentitiesOnly yes\n\tUserKnownHostsFile %s\n\tGlobalKnownHostsFile /dev/null\n\tBatchMode yes\n",
		w.sshd.Port, w.user, w.key.Path, w.knownHosts))
	logFile := filepath.Join(w.dir, "rssh.log")
	cases := []struct {
		name string
		args []string
		warn bool
	}{
		{"default", []string{"-F", plain, "target", "echo ok"}, true},
		{"yes", []string{"-F", w.config, "-o", "WarnWeakCrypto=yes", "target", "echo ok"}, true},
		{"no", []string{"-F", plain, "-o", "WarnWeakCrypto=no", "target", "echo ok"}, false},
		{"no-pq-kex", []string{"-F", plain, "-oWarnWeakCrypto=no-pq-kex", "target", "echo ok"}, false},
		{"-q", []string{"-F", plain, "-q", "target", "echo ok"}, false},
		{"LogLevel ERROR", []string{"-F", plain, "-o", "LogLevel=ERROR", "target", "echo ok"}, false},
		{"KexAlgorithms set", []string{"-F", plain, "-o", "KexAlgorithms=curve25519-sha256", "target", "echo ok"}, false},
		{"-E", []string{"-F", plain, "-E", logFile, "target", "echo ok"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := w.run(nil, rsshBin, c.args...)
			if r.code != 0 || r.stdout != "ok\n" {
				t.Fatalf("want the command to run: %s", r)
			}
			if got := strings.Contains(r.stderr, weakKexWarning); got != c.warn {
				t.Fatalf("warning on stderr = %v, want %v: %q", got, c.warn, r.stderr)
			}
			if c.warn && strings.Count(r.stderr, "post-quantum") != 1 {
				t.Fatalf("want the warning once: %q", r.stderr)
			}
		})
	}
	// -E sends it to the log file, as ssh sends logit there.
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), weakKexWarning) {
		t.Errorf("-E: log file lacks the warning: %q", b)
	}
	// It comes after key exchange and before authentication, so a failed
	// login still shows it first, as ssh 10.1.
	r := w.run(nil, rsshBin, "-F", plain, "-l", "root", "target", "true")
	if r.code != 255 || !strings.HasPrefix(r.stderr, weakKexWarning) || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("want the warning then the auth failure: %s", r)
	}
	// -G shows the setting where OpenSSH 10.1 prints it.
	for _, c := range []struct{ arg, want string }{{"WarnWeakCrypto=yes", "yes"}, {"WarnWeakCrypto=no-pq-kex", "no"}, {"WarnWeakCrypto=false", "no"}} {
		g := w.run(nil, rsshBin, "-G", "-F", plain, "-o", c.arg, "target")
		if g.code != 0 || !strings.Contains(g.stdout, "\nenableescapecommandline no\nwarnweakcrypto "+c.want+"\n") {
			t.Errorf("-G -o %s: want warnweakcrypto %s after enableescapecommandline: %s", c.arg, c.want, g)
		}
	}
	if g := w.run(nil, rsshBin, "-G", "-F", plain, "-o", "WarnWeakCrypto=maybe", "target"); g.code != 255 || !strings.Contains(g.stderr, `"maybe"`) {
		t.Errorf("-o WarnWeakCrypto=maybe: want refused, got %s", g)
	}
}

// An x/crypto server that offers mlkem768x25519-sha256 gets a post-quantum
// key exchange and no warning; the same server limited to curve25519 gets
// the warning.
func TestWeakKexWarningInProcessServer(t *testing.T) {
	dir := t.TempDir()
	user := testenv.NewKey(t, dir, "id_user")
	for _, c := range []struct {
		name    string
		kex     []string
		wantKex string
		warn    bool
	}{
		{"mlkem", nil, "mlkem768x25519-sha256", false},
		{"curve25519 only", []string{"curve25519-sha256"}, "curve25519-sha256", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startXServer(t, dir, user.PublicKey, c.kex)
			cfg := filepath.Join(dir, "config-"+strings.ReplaceAll(c.name, " ", "_"))
			os.WriteFile(cfg, []byte(fmt.Sprintf("Host x\n\tHostName 127.0.0.1\n\tPort %d\n\tUser u\n\tIdentityFile %s\n"+
				"\tIdentitiesOnly yes\n\tUserKnownHostsFile %s\n\tGlobalKnownHostsFile /dev/null\n\tBatchMode yes\n",
				srv.port, user.Path, srv.knownHosts)), 0o600)
			w := &world{t: t, dir: dir, env: append(cleanEnv(), "HOME="+dir, "SSH_AUTH_SOCK=")}
			r := w.run(nil, rsshBin, "-F", cfg, "x", "hello")
			if r.code != 0 || r.stdout != "ran: hello\n" {
				t.Fatalf("want the command to run: %s", r)
			}
			if got := srv.kex(); got != c.wantKex {
				t.Fatalf("negotiated %q, want %q", got, c.wantKex)
			}
			if got := strings.Contains(r.stderr, weakKexWarning); got != c.warn {
				t.Fatalf("warning = %v, want %v: %q", got, c.warn, r.stderr)
			}
		})
	}
}

type xServer struct {
	port       int
	knownHosts string
	mu         sync.Mutex
	lastKex    string
}

func (s *xServer) kex() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastKex
}

// startXServer runs an x/crypto SSH server on 127.0.0.1 that lets key in
// and answers an exec request with "ran: COMMAND"; kex limits its key
// exchanges (nil: x/crypto's defaults, ML-KEM first).
func startXServer(t *testing.T, dir string, key ssh.PublicKey, kex []string) *xServer {
	hk := testenv.NewKey(t, t.TempDir(), "host")
	conf := &ssh.ServerConfig{
		Config: ssh.Config{KeyExchanges: kex},
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		},
	}
	conf.AddHostKey(hk.Signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &xServer{port: l.Addr().(*net.TCPAddr).Port}
	s.knownHosts = filepath.Join(dir, fmt.Sprintf("known_hosts_%d", s.port))
	os.WriteFile(s.knownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", s.port, hk.AuthorizedLine())), 0o600)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				sc, chans, reqs, err := ssh.NewServerConn(nc, conf)
				if err != nil {
					return
				}
				s.mu.Lock()
				s.lastKex = sc.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().KeyExchange
				s.mu.Unlock()
				go ssh.DiscardRequests(reqs)
				for nch := range chans {
					if nch.ChannelType() != "session" {
						nch.Reject(ssh.UnknownChannelType, "no")
						continue
					}
					ch, creqs, err := nch.Accept()
					if err != nil {
						continue
					}
					for req := range creqs {
						if req.Type != "exec" {
							req.Reply(false, nil)
							continue
						}
						var p struct{ Command string }
						ssh.Unmarshal(req.Payload, &p)
						req.Reply(true, nil)
						fmt.Fprintf(ch, "ran: %s\n", p.Command)
						ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
						ch.Close()
						break
					}
				}
			}()
		}
	}()
	return s
}
