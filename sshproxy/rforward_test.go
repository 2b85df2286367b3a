package sshproxy

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
)

// fwdServer is an in-process SSH server that answers tcpip-forward and
// streamlocal-forward requests and, in the same instant, opens the
// forwarded channel a real server opens when a connection arrives: the
// race golang/go#64094 loses.
type fwdServer struct {
	t     *testing.T
	sconn *ssh.ServerConn
	// openFirst opens the channel before replying (on its own goroutine,
	// so either may reach the client first).
	openFirst bool
	// results has one entry per forwarded channel opened: nil when the
	// client accepted it and the payload came through, else why not.
	results chan error
	cancels chan string // "host:port" or a path, per cancel request

	mu       sync.Mutex
	nextPort int
}

const forwardPayload = "hello through the forward\n"

func startFwdServer(t *testing.T, openFirst bool) (*Conn, *fwdServer) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	scfg := &ssh.ServerConfig{NoClientAuth: true}
	scfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &fwdServer{t: t, openFirst: openFirst, results: make(chan error, 1024), cancels: make(chan string, 1024), nextPort: 40000}
	ready := make(chan error, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			ready <- err
			return
		}
		sconn, chans, reqs, err := ssh.NewServerConn(nc, scfg)
		if err != nil {
			ready <- err
			return
		}
		s.sconn = sconn
		ready <- nil
		go func() {
			for nc := range chans {
				nc.Reject(ssh.Prohibited, "no channels here")
			}
		}()
		for req := range reqs {
			s.handle(req)
		}
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, l.Addr().String(), &ssh.ClientConfig{
		User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	c := newConn(ssh.NewClient(cc, chans, reqs), &config.Config{})
	t.Cleanup(func() {
		c.Close()
		s.sconn.Close()
	})
	return c, s
}

func (s *fwdServer) handle(req *ssh.Request) {
	var open func()
	var reply []byte
	switch req.Type {
	case "tcpip-forward":
		var m struct {
			Addr string
			Port uint32
		}
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			req.Reply(false, nil)
			return
		}
		if m.Port == 0 {
			s.mu.Lock()
			s.nextPort++
			m.Port = uint32(s.nextPort)
			s.mu.Unlock()
			reply = ssh.Marshal(struct{ Port uint32 }{m.Port})
		}
		open = func() {
			s.openAndRead("forwarded-tcpip", ssh.Marshal(struct {
				Addr       string
				Port       uint32
				OriginAddr string
				OriginPort uint32
			}{m.Addr, m.Port, "127.0.0.1", 50000}))
		}
	case "streamlocal-forward@openssh.com":
		var m struct{ Path string }
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			req.Reply(false, nil)
			return
		}
		open = func() {
			s.openAndRead("forwarded-streamlocal@openssh.com", ssh.Marshal(struct {
				Path     string
				Reserved string
			}{m.Path, ""}))
		}
	case "cancel-tcpip-forward":
		var m struct {
			Addr string
			Port uint32
		}
		ssh.Unmarshal(req.Payload, &m)
		s.cancels <- net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
		req.Reply(true, nil)
		return
	case "cancel-streamlocal-forward@openssh.com":
		var m struct{ Path string }
		ssh.Unmarshal(req.Payload, &m)
		s.cancels <- m.Path
		req.Reply(true, nil)
		return
	default:
		req.Reply(false, nil)
		return
	}
	if s.openFirst {
		go open()
		req.Reply(true, reply)
		return
	}
	req.Reply(true, reply)
	go open()
}

// openAndRead opens a forwarded channel and reads what the client's side
// of the forward sends.
func (s *fwdServer) openAndRead(ctype string, payload []byte) {
	ch, reqs, err := s.sconn.OpenChannel(ctype, payload)
	if err != nil {
		s.results <- err
		return
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	got, err := io.ReadAll(io.LimitReader(ch, int64(len(forwardPayload))+1))
	if err == nil && string(got) != forwardPayload {
		err = fmt.Errorf("read %q through the forward", got)
	}
	s.results <- err
}

// openUnknown opens a forwarded-tcpip channel for a forward nobody asked
// for, and returns the open's error.
func (s *fwdServer) openUnknown(host string, port int) error {
	ch, _, err := s.sconn.OpenChannel("forwarded-tcpip", ssh.Marshal(struct {
		Addr       string
		Port       uint32
		OriginAddr string
		OriginPort uint32
	}{host, uint32(port), "127.0.0.1", 50000}))
	if err == nil {
		ch.Close()
	}
	return err
}

// payloadServer writes forwardPayload to every connection, over TCP and
// on a Unix socket.
func payloadServer(t *testing.T) (tcpPort int, sock string) {
	t.Helper()
	serve := func(l net.Listener) {
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, forwardPayload)
				c.Close()
			}
		}()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(l)
	sock = filepath.Join(t.TempDir(), "payload.sock")
	u, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serve(u)
	return l.Addr().(*net.TCPAddr).Port, sock
}

func testForwards() Forwards {
	return Forwards{Log: slog.New(slog.DiscardHandler), Warn: io.Discard}
}

// A server that opens the forwarded channel the instant it replies (or
// just before) loses no connection: fixed ports, port 0 and Unix sockets,
// many times over on one connection.
func TestRemoteForwardOpenedAtOnce(t *testing.T) {
	const rounds = 100
	for _, openFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("openFirst=%v", openFirst), func(t *testing.T) {
			c, s := startFwdServer(t, openFirst)
			port, sock := payloadServer(t)
			target := "127.0.0.1:" + strconv.Itoa(port)
			var specs []string
			for i := 0; i < rounds; i++ {
				specs = append(specs,
					strconv.Itoa(20000+i)+":"+target,         // fixed port
					"0:"+target,                              // the server picks
					"127.0.0.1:0:"+target,                    // port 0 with a bind address
					"/remote/"+strconv.Itoa(i)+".sock:"+sock, // streamlocal
				)
			}
			fw := testForwards()
			fw.Remote = specs
			fw.ExitOnFailure = true
			f, err := c.StartForwards(fw)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			lost := 0
			deadline := time.After(60 * time.Second)
			for i := range specs {
				select {
				case err := <-s.results:
					if err != nil {
						lost++
						if lost <= 3 {
							t.Errorf("forwarded channel lost: %v", err)
						}
					}
				case <-deadline:
					t.Fatalf("only %d of %d forwarded channels came back", i, len(specs))
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d forwarded channels lost", lost, len(specs))
			}
		})
	}
}

// Opens for a forward never asked for, or cancelled, are refused as
// OpenSSH refuses them; Close and ~C -KR send the cancel requests.
func TestRemoteForwardUnknownAndCancel(t *testing.T) {
	c, s := startFwdServer(t, false)
	port, sock := payloadServer(t)
	target := "127.0.0.1:" + strconv.Itoa(port)
	fw := testForwards()
	fw.Remote = []string{"5000:" + target, "127.0.0.1:5001:" + target, "/r.sock:" + sock}
	f, err := c.StartForwards(fw)
	if err != nil {
		t.Fatal(err)
	}
	for range fw.Remote {
		if err := <-s.results; err != nil {
			t.Fatal(err)
		}
	}
	refused := func(host string, port int) {
		t.Helper()
		err := s.openUnknown(host, port)
		var oe *ssh.OpenChannelError
		if !errors.As(err, &oe) || oe.Reason != ssh.Prohibited {
			t.Fatalf("open for %s:%d: want administratively prohibited, got %v", host, port, err)
		}
	}
	refused("localhost", 5002) // no such port
	refused("127.0.0.1", 5000) // asked for as localhost
	refused("localhost", 5001) // asked for as 127.0.0.1

	f.command("-KR 5000")
	if got := <-s.cancels; got != "localhost:5000" {
		t.Fatalf("~C -KR 5000 cancelled %q", got)
	}
	refused("localhost", 5000)
	f.Close()
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		select {
		case c := <-s.cancels:
			got[c] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("Close sent only %v", got)
		}
	}
	if !got["127.0.0.1:5001"] || !got["/r.sock"] {
		t.Fatalf("Close cancelled %v", got)
	}
	refused("127.0.0.1", 5001)
}
