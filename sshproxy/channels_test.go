package sshproxy

import (
	"fmt"
	"net"
	"testing"
)

// ~# lists open channels in number order, numbers reused lowest first as
// OpenSSH reuses its channel slots, each as "  #N name (type)".
func TestOpenMessage(t *testing.T) {
	c := &Conn{}
	sess := c.track("session", "client-session")
	agent := c.track(agentChannelName, agentChannelName)
	socks := c.track("dynamic-tcpip", "dynamic-tcpip")
	agent.close()
	fwd := c.track("forwarded-tcpip", "127.0.0.1")
	socks.rename("direct-tcpip: listening port 1080 for example.com port 443")
	want := "The following connections are open:\r\n" +
		"  #0 client-session (session)\r\n" +
		"  #1 127.0.0.1 (forwarded-tcpip)\r\n" +
		"  #2 direct-tcpip: listening port 1080 for example.com port 443 (dynamic-tcpip)\r\n"
	if got := c.openMessage(); got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	sess.close()
	fwd.close()
	socks.close()
	socks.close() // twice is harmless
	if got := c.openMessage(); got != "The following connections are open:\r\n" {
		t.Fatalf("after closing all: %q", got)
	}
}

// A connection accepted on a local listener is named as OpenSSH's
// port_open_helper names it.
func TestForwardedName(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	lport := l.Addr().(*net.TCPAddr).Port
	cport := client.LocalAddr().(*net.TCPAddr).Port
	want := fmt.Sprintf("direct-tcpip: listening port %d for db port 5432, connect from 127.0.0.1 port %d to 127.0.0.1 port %d", lport, cport, lport)
	if got := forwardedName("direct-tcpip", l.Addr(), "db:5432", accepted); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	unix := &net.UnixAddr{Name: "/tmp/l.sock", Net: "unix"}
	if got := forwardedName("direct-streamlocal@openssh.com", unix, "/run/t.sock", noAddrConn{}); got != "direct-streamlocal@openssh.com: listening path /tmp/l.sock for /run/t.sock" {
		t.Errorf("unix: got %q", got)
	}
}

type noAddrConn struct{ net.Conn }

func (noAddrConn) LocalAddr() net.Addr  { return &net.UnixAddr{Net: "unix"} }
func (noAddrConn) RemoteAddr() net.Addr { return &net.UnixAddr{Net: "unix"} }
