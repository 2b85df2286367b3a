package sshproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestExitStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
		fail bool
	}{
		{nil, 0, false},
		{&ssh.ExitMissingError{}, 255, false},
		{errors.New("connection lost"), 255, true},
	} {
		got, err := exitStatus(c.err)
		if got != c.want || (err != nil) != c.fail {
			t.Errorf("exitStatus(%v) = %d, %v; want %d, error %v", c.err, got, err, c.want, c.fail)
		}
	}
}

func TestKnownAlgorithms(t *testing.T) {
	got := known([]string{"sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "nope"},
		ssh.SupportedAlgorithms().KeyExchanges, ssh.InsecureAlgorithms().KeyExchanges)
	if !slices.Equal(got, []string{"curve25519-sha256"}) {
		t.Fatalf("got %q", got)
	}
}

// Relay passes stdin's EOF on as a half-close and still delivers
// everything the other side sends after it.
func TestRelayHalfClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		in, _ := io.ReadAll(c) // until the client's half-close
		c.Write([]byte(strings.ToUpper(string(in))))
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Relay(c, strings.NewReader("hello"), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "HELLO" {
		t.Fatalf("got %q", out.String())
	}
}

func TestHostKeyNameAndDisplay(t *testing.T) {
	if got := displayName("h", 22); got != "h" {
		t.Error(got)
	}
	if got := displayName("h", 2222); got != "[h]:2222" {
		t.Error(got)
	}
	if got := displayName("alias", 0); got != "alias" {
		t.Error(got)
	}
}
