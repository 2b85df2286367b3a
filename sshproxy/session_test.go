package sshproxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/rssh/rssh/config"
)

// WantTTY against what OpenSSH 9.2 does (checked with the real ssh):
// `ssh host` on a terminal gets a PTY, `ssh host </dev/null` says it will
// not allocate one, -t with a pipe says so too, -tt forces one.
func TestWantTTY(t *testing.T) {
	for _, c := range []struct {
		req                       string
		cmd, none, stdinTTY, null bool
		tty, notice               bool
	}{
		{"auto", false, false, true, false, true, false},
		{"auto", false, false, false, false, false, true},
		{"auto", true, false, true, false, false, false},
		{"auto", true, false, false, false, false, false},
		{"yes", true, false, true, false, true, false},
		{"yes", true, false, false, false, false, true},
		{"force", true, false, false, false, true, false},
		{"force", false, false, false, true, true, false},
		{"no", false, false, true, false, false, false},
		{"auto", false, true, true, false, false, false},
		{"auto", false, false, true, true, false, true},
	} {
		tty, notice := WantTTY(c.req, c.cmd, c.none, c.stdinTTY, c.null)
		if tty != c.tty || notice != c.notice {
			t.Errorf("WantTTY(%+v) = %v, %v; want %v, %v", c, tty, notice, c.tty, c.notice)
		}
	}
}

func TestLocalBinds(t *testing.T) {
	for _, c := range []struct {
		spec    string
		gateway bool
		want    string
	}{
		{"8080 [h]:80", false, "127.0.0.1 ::1"},
		{"8080 [h]:80", true, ""},
		{"[*]:8080 [h]:80", false, ""},
		{"[localhost]:8080 [h]:80", true, "127.0.0.1 ::1"},
		{"[10.1.2.3]:8080 [h]:80", true, "10.1.2.3"},
	} {
		f, err := config.ParseForward(c.spec, config.LocalForward)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(localBinds(f, c.gateway), " "); got != c.want {
			t.Errorf("localBinds(%q, gateway %v) = %q, want %q", c.spec, c.gateway, got, c.want)
		}
	}
}

// A SOCKS client that sends junk, or asks for something other than
// CONNECT, gets an answer and a closed connection, never a dial.
func TestSOCKSRefusesWhatItCannotServe(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"bad version", []byte{7, 1, 0}, nil},
		{"socks5 auth only", []byte{5, 1, 2}, []byte{5, 0xff}},
		{"socks5 bind", []byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, []byte{5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"socks4 bind", []byte{4, 2, 0, 80, 127, 0, 0, 1, 0}, nil},
		{"socks4 user id without end", append([]byte{4, 1, 0, 80, 127, 0, 0, 1}, bytes.Repeat([]byte{'u'}, 300)...), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, server := net.Pipe()
			dialed := false
			var warn bytes.Buffer
			done := make(chan struct{})
			go func() {
				serveSOCKS(server, func(string, string) (net.Conn, error) { dialed = true; return nil, io.EOF }, &warn)
				close(done)
			}()
			go func() { client.Write(c.in) }()
			got, _ := io.ReadAll(client)
			<-done
			if dialed || !bytes.Equal(got, c.want) || !strings.HasPrefix(warn.String(), "rssh: ") {
				t.Errorf("dialed %v, answer %v (want %v), warning %q", dialed, got, c.want, warn.String())
			}
		})
	}
}
