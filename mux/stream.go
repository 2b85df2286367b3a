//go:build unix

package mux

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// StdioStream asks the master for a stdio forward to host:port
// (MUX_C_NEW_STDIO_FWD, what `ssh -W host:port` sends through a master)
// and returns it as a byte stream: what OpenSSH's ProxyJump gets when a
// hop has a live master. The master is handed one end of two pipes, as
// ssh -W hands it its stdin and stdout; the stream is the other ends.
// CloseWrite passes EOF on; Close ends the forward and the control
// connection. The master's refusal is a *RefusedError.
func (c *Client) StdioStream(host string, port uint32) (net.Conn, error) {
	upR, upW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	downR, downW, err := os.Pipe()
	if err != nil {
		upR.Close()
		upW.Close()
		return nil, err
	}
	err = c.openStdio(host, port, upR, downW)
	// The master has its own copies now (or never will).
	upR.Close()
	downW.Close()
	if err != nil {
		upW.Close()
		downR.Close()
		return nil, err
	}
	return &stdioStream{r: downR, w: upW, ctl: c, addr: stdioAddr(fmt.Sprintf("[%s]:%d", host, port))}, nil
}

// stdioStream is a stdio forward through a master as a net.Conn.
type stdioStream struct {
	r, w *os.File
	ctl  *Client
	addr stdioAddr
	once sync.Once
	wmu  sync.Once
}

func (s *stdioStream) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *stdioStream) Write(p []byte) (int, error) { return s.w.Write(p) }

// CloseWrite is the forward's EOF: the master sees its stdin end.
func (s *stdioStream) CloseWrite() error {
	var err error
	s.wmu.Do(func() { err = s.w.Close() })
	return err
}

func (s *stdioStream) Close() error {
	s.once.Do(func() {
		s.CloseWrite()
		s.r.Close()
		s.ctl.Close()
	})
	return nil
}

func (s *stdioStream) LocalAddr() net.Addr  { return stdioAddr("mux") }
func (s *stdioStream) RemoteAddr() net.Addr { return s.addr }
func (s *stdioStream) SetDeadline(t time.Time) error {
	s.r.SetReadDeadline(t)
	return s.w.SetWriteDeadline(t)
}
func (s *stdioStream) SetReadDeadline(t time.Time) error  { return s.r.SetReadDeadline(t) }
func (s *stdioStream) SetWriteDeadline(t time.Time) error { return s.w.SetWriteDeadline(t) }

type stdioAddr string

func (stdioAddr) Network() string  { return "mux" }
func (a stdioAddr) String() string { return string(a) }
