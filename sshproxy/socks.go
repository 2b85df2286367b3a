package sshproxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// socksHandshakeTimeout bounds how long a client may take to say where it
// wants to go; a silent client must not hold a goroutine forever.
const socksHandshakeTimeout = 30 * time.Second

// serveSOCKS serves one SOCKS4, SOCKS4a or SOCKS5 CONNECT (no
// authentication), as OpenSSH's dynamic forwarding does, opening the
// target with dial and relaying until both sides are done.
func serveSOCKS(c net.Conn, dial func(network, addr string) (net.Conn, error), warn io.Writer) {
	c.SetDeadline(time.Now().Add(socksHandshakeTimeout))
	r := bufio.NewReaderSize(c, 512)
	ver, err := r.ReadByte()
	if err != nil {
		c.Close()
		return
	}
	var target string
	var reply func(ok bool) error
	switch ver {
	case 4:
		target, reply, err = socks4Request(r, c)
	case 5:
		target, reply, err = socks5Request(r, c)
	default:
		err = fmt.Errorf("unsupported SOCKS version %d", ver)
	}
	if err != nil {
		fmt.Fprintf(warn, "rssh: dynamic forwarding: %v\n", err)
		c.Close()
		return
	}
	remote, err := dial("tcp", target)
	if errors.Is(err, errNotPermitted) {
		c.Close()
		return
	}
	if err != nil {
		fmt.Fprintf(warn, "rssh: dynamic forwarding to %s: %v\n", target, openError(err))
		reply(false)
		c.Close()
		return
	}
	if err := reply(true); err != nil {
		remote.Close()
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	// Bytes the client sent after its request are already in r.
	if n := r.Buffered(); n > 0 {
		b, _ := r.Peek(n)
		if _, err := remote.Write(b); err != nil {
			remote.Close()
			c.Close()
			return
		}
	}
	pipe(asHalfCloser(c), asHalfCloser(remote))
}

// readCString reads a NUL-terminated string of at most max bytes.
func readCString(r *bufio.Reader, max int) (string, error) {
	var b []byte
	for len(b) <= max {
		ch, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if ch == 0 {
			return string(b), nil
		}
		b = append(b, ch)
	}
	return "", errors.New("SOCKS4 string too long")
}

func socks4Request(r *bufio.Reader, w io.Writer) (string, func(bool) error, error) {
	var hdr [7]byte // command, port, IPv4 address
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", nil, err
	}
	if hdr[0] != 1 {
		return "", nil, fmt.Errorf("SOCKS4 command %d not supported", hdr[0])
	}
	port := binary.BigEndian.Uint16(hdr[1:3])
	if _, err := readCString(r, 255); err != nil { // user id, unused
		return "", nil, err
	}
	host := net.IP(hdr[3:7]).String()
	if hdr[3] == 0 && hdr[4] == 0 && hdr[5] == 0 && hdr[6] != 0 {
		// SOCKS4a: the name follows.
		name, err := readCString(r, 255)
		if err != nil {
			return "", nil, err
		}
		host = name
	}
	reply := func(ok bool) error {
		code := byte(91)
		if ok {
			code = 90
		}
		_, err := w.Write([]byte{0, code, 0, 0, 0, 0, 0, 0})
		return err
	}
	target, err := socksTarget(host, port)
	if err != nil {
		reply(false)
		return "", nil, err
	}
	return target, reply, nil
}

func socks5Request(r *bufio.Reader, w io.Writer) (string, func(bool) error, error) {
	n, err := r.ReadByte()
	if err != nil {
		return "", nil, err
	}
	methods := make([]byte, n) // n is a byte: at most 255
	if _, err := io.ReadFull(r, methods); err != nil {
		return "", nil, err
	}
	noAuth := false
	for _, m := range methods {
		noAuth = noAuth || m == 0
	}
	if !noAuth {
		w.Write([]byte{5, 0xff})
		return "", nil, errors.New("SOCKS5 client offers no method without authentication")
	}
	if _, err := w.Write([]byte{5, 0}); err != nil {
		return "", nil, err
	}
	var hdr [4]byte // version, command, reserved, address type
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", nil, err
	}
	fail := func(code byte) {
		w.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
	}
	if hdr[0] != 5 {
		return "", nil, errors.New("bad SOCKS5 request")
	}
	if hdr[1] != 1 {
		fail(7) // command not supported
		return "", nil, fmt.Errorf("SOCKS5 command %d not supported", hdr[1])
	}
	var host string
	switch hdr[3] {
	case 1:
		var a [4]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return "", nil, err
		}
		host = net.IP(a[:]).String()
	case 3:
		l, err := r.ReadByte()
		if err != nil {
			return "", nil, err
		}
		name := make([]byte, l) // at most 255
		if _, err := io.ReadFull(r, name); err != nil {
			return "", nil, err
		}
		host = string(name)
	case 4:
		var a [16]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return "", nil, err
		}
		host = netip.AddrFrom16(a).String() // inet_ntop's form, as ssh matches PermitRemoteOpen
	default:
		fail(8) // address type not supported
		return "", nil, fmt.Errorf("SOCKS5 address type %d not supported", hdr[3])
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return "", nil, err
	}
	reply := func(ok bool) error {
		code := byte(5) // connection refused
		if ok {
			code = 0
		}
		// OpenSSH answers with a zero bound address too: the real one is
		// on the server and of no use to the client.
		_, err := w.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
		return err
	}
	target, err := socksTarget(host, binary.BigEndian.Uint16(p[:]))
	if err != nil {
		fail(1) // general failure
		return "", nil, err
	}
	return target, reply, nil
}

// socksTarget is host:port for dial. A name a client sent (SOCKS4a, SOCKS5)
// that does not survive that round trip ("", "[") is refused here with its
// own message rather than failing later in the dialer as a bad address.
func socksTarget(host string, port uint16) (string, error) {
	if host == "" {
		return "", errors.New("SOCKS request with an empty host name")
	}
	t := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if h, _, err := net.SplitHostPort(t); err != nil || h != host {
		return "", fmt.Errorf("SOCKS request for a bad host name %q", host)
	}
	return t, nil
}
