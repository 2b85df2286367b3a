//go:build linux

package sshproxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/crash"
)

// childToken is in the child's environment and memory while it panics; it
// must not reach the crash file or stderr.
const childToken = "ops_crash_test_token_must_not_leak_0123456789"

// panicChild is the child process of TestNoPanicEscapes: it puts its stdin
// terminal in raw mode, as a PTY session does, and then panics where mode
// says — a goroutine of its own, or inside one kind of callback x/crypto
// runs while connecting to an in-process server.
func panicChild(mode string) {
	t := OpenTerminal(os.Stdin)
	t.MakeRaw()
	defer t.Restore() // the session's own defer: never runs, as in a real crash
	token := []byte(os.Getenv("RSSH_CHILD_TOKEN"))
	defer clear(token) // keeps the token live in this frame while it panics
	boom := func() { panic("forwarding goroutine failed") }
	switch mode {
	case "plain":
		go boom()
		time.Sleep(10 * time.Second)
	case "crash.Go":
		crash.Go(boom)
		time.Sleep(10 * time.Second)
	default:
		testPanicIn = func(kind string) {
			if kind == mode {
				panic("boom in " + kind)
			}
		}
		if err := connectAndServe(mode); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		time.Sleep(10 * time.Second)
	}
	fmt.Fprintln(os.Stderr, "child: no panic")
	os.Exit(4)
}

func TestMain(m *testing.M) {
	if mode := os.Getenv("RSSH_PANIC_CHILD"); mode != "" {
		panicChild(mode)
	}
	os.Exit(m.Run())
}

// connectAndServe connects a Client to an in-process x/crypto server that
// makes rssh reach the callback kind: it sends a banner, asks for a public
// key, a password or keyboard-interactive answers, opens an agent channel
// or a forwarded-tcpip channel.
func connectAndServe(kind string) error {
	dir, err := os.MkdirTemp("", "rssh-crash-child-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(userPriv, "")
	idPath := filepath.Join(dir, "id")
	if err := os.WriteFile(idPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, fmt.Appendf(nil, "[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey())), 0o600)

	sc := &ssh.ServerConfig{BannerCallback: func(ssh.ConnMetadata) string { return "banner\n" }}
	switch kind {
	case cbPassword:
		sc.PasswordCallback = func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return nil, nil }
	case cbKeyboard:
		sc.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			_, err := ask("", "", []string{"Code: "}, []bool{false})
			return nil, err
		}
	default:
		sc.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }
	}
	sc.AddHostKey(hostSigner)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		conn, chans, reqs, err := ssh.NewServerConn(nc, sc)
		if err != nil {
			return
		}
		go func() {
			for nc := range chans {
				nc.Reject(ssh.Prohibited, "no")
			}
		}()
		var fwd struct {
			Addr string
			Port uint32
		}
		for req := range reqs {
			switch req.Type {
			case "open-agent":
				req.Reply(true, nil)
				conn.OpenChannel(agentChannel, nil)
			case "tcpip-forward":
				ssh.Unmarshal(req.Payload, &fwd)
				req.Reply(true, binary.BigEndian.AppendUint32(nil, 40000))
			case "open-forwarded":
				// Only once the client has registered the forward: opening
				// at once races x/crypto's registration (golang/go#64094).
				req.Reply(true, nil)
				conn.OpenChannel("forwarded-tcpip", ssh.Marshal(struct {
					Addr     string
					Port     uint32
					OrigAddr string
					OrigPort uint32
				}{fwd.Addr, 40000, "127.0.0.1", 1234}))
			default:
				req.Reply(false, nil)
			}
		}
	}()
	cfg := &config.Config{
		Hostname: "127.0.0.1", Port: port, User: "u",
		IdentityFiles: []string{idPath}, PubkeyAuthentication: true,
		PasswordAuthentication: true, KbdInteractiveAuthentication: true, NumberOfPasswordPrompts: 1,
		UserKnownHostsFiles: []string{kh}, StrictHostKeyChecking: "yes", LogLevel: "INFO",
	}
	cl := &Client{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Prompt: answerPrompt{}, Getenv: os.Getenv, Stderr: io.Discard}
	c, err := cl.Dial(context.Background(), cfg)
	if err != nil {
		return err
	}
	switch kind {
	case cbAgentChannel:
		c.ServeAgent(filepath.Join(dir, "agent.sock"))
		if _, _, err := c.SendRequest("open-agent", true, nil); err != nil {
			return err
		}
	case cbForwardChannel:
		if _, err := c.StartForwards(Forwards{Remote: []string{"127.0.0.1:0:127.0.0.1:1"}, Log: cl.Log, Warn: io.Discard}); err != nil {
			return err
		}
		if _, _, err := c.SendRequest("open-forwarded", true, nil); err != nil {
			return err
		}
	}
	return nil
}

var internalErrorRE = regexp.MustCompile(`^rssh: internal error: (.*) \(stack in (.*)\)\n$`)

// No panic escapes: a panic in each kind of callback x/crypto runs (host
// key, banner, signing, keyboard-interactive, password, the agent and
// forwarded-tcpip channel handlers) and on a goroutine started with
// crash.Go ends the process with exit 255 and one "rssh: internal error"
// line naming a 0600 file under $XDG_STATE_HOME/rssh that holds the stack
// (and not the token), with the terminal back in the modes it had. A
// panic on a plain goroutine (the control) leaves the terminal raw and
// exits 2 with Go's trace, which is what all this is for.
func TestNoPanicEscapes(t *testing.T) {
	modes := []string{"plain", "crash.Go", cbHostKey, cbBanner, cbSign, cbKeyboard, cbPassword, cbAgentChannel, cbForwardChannel}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			master, slave, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer master.Close()
			defer slave.Close()
			go func() { // drain, so the child never blocks on output
				buf := make([]byte, 1024)
				for {
					if _, err := master.Read(buf); err != nil {
						return
					}
				}
			}()
			before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "RSSH_PANIC_CHILD="+mode, "XDG_STATE_HOME="+state, "RSSH_CHILD_TOKEN="+childToken)
			var stderr bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, &stderr
			err = cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			same := before.Lflag == after.Lflag && before.Iflag == after.Iflag && before.Oflag == after.Oflag
			if mode == "plain" {
				if code != 2 || !strings.Contains(stderr.String(), "panic: forwarding goroutine failed") {
					t.Fatalf("control: exit %d, want Go's panic exit 2:\n%s", code, stderr.String())
				}
				if same {
					t.Fatal("control: a plain goroutine's panic left the terminal as it was; the test does not see raw mode")
				}
				return
			}
			if code != 255 {
				t.Fatalf("exit %d, want 255:\n%s", code, stderr.String())
			}
			m := internalErrorRE.FindStringSubmatch(stderr.String())
			if m == nil {
				t.Fatalf("stderr is not one internal-error line:\n%s", stderr.String())
			}
			want := "boom in " + mode
			if mode == "crash.Go" {
				want = "forwarding goroutine failed"
			}
			if m[1] != want {
				t.Errorf("line names %q, want %q", m[1], want)
			}
			if filepath.Dir(m[2]) != filepath.Join(state, "rssh") {
				t.Errorf("stack file %s not under $XDG_STATE_HOME/rssh", m[2])
			}
			fi, err := os.Stat(m[2])
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("stack file mode %v, want 0600", fi.Mode().Perm())
			}
			b, _ := os.ReadFile(m[2])
			if !strings.Contains(string(b), "panic: "+want) || !strings.Contains(string(b), "sshproxy") {
				t.Errorf("stack file lacks the panic or its frames:\n%s", b)
			}
			if strings.Contains(string(b), childToken) || strings.Contains(stderr.String(), childToken) {
				t.Error("the token reached the crash report")
			}
			if !same {
				t.Fatalf("terminal left in raw mode:\nbefore %+v\nafter  %+v", *before, *after)
			}
		})
	}
}
