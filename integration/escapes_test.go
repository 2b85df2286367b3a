package integration

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mark is how much the terminal has shown so far, for expectSince.
func (p *ptyRun) mark() int { return len(p.out.String()) }

// expectSince waits for want in what the terminal showed after mark, so
// that a prompt or message seen before does not count again.
func (p *ptyRun) expectSince(mark int, want string, d time.Duration) {
	p.t.Helper()
	if !pollUntil(d, func() bool { return strings.Contains(p.out.String()[mark:], want) }) {
		p.t.Fatalf("terminal never showed %q after %q; it shows %q", want, p.out.String()[:mark], p.out.String()[mark:])
	}
}

// answer types keys and waits for want to follow; it returns where the
// answer starts.
func (p *ptyRun) answer(keys, want string) int {
	p.t.Helper()
	m := p.mark()
	p.send(keys)
	p.expectSince(m, want, 10*time.Second)
	return m
}

// commandLine types ~C and line at the "ssh>" prompt and waits for the
// answer. While the prompt is open the terminal is back in its own modes.
func (p *ptyRun) commandLine(line, answer string) {
	p.t.Helper()
	m := p.answer("\r~C", "\r\nssh> ")
	p.termiosUnchanged()
	p.send(line + "\r")
	p.expectSince(m, answer, 10*time.Second)
}

// waitRaw waits until the program has put the terminal back in raw mode.
func (p *ptyRun) waitRaw() {
	p.t.Helper()
	raw := func() bool {
		tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ICANON == 0
	}
	if !pollUntil(10*time.Second, raw) {
		p.t.Fatalf("the terminal never went back to raw mode; it shows %q", p.out.String())
	}
}

// interactive starts prog ("rssh" or "ssh") on a PTY with a shell whose
// prompt is "rssh$ " and waits for it.
func interactive(t *testing.T, w *world, prog string, args ...string) *ptyRun {
	t.Helper()
	bin := rsshBin
	if prog == "ssh" {
		bin = w.sshBin()
	}
	args = append(append([]string{"-F", w.config}, args...), "-t", "target", "PS1='rssh$ ' sh -i")
	p := startPTY(t, w, bin, args...)
	p.expect("rssh$ ", 15*time.Second)
	return p
}

// ends waits for the program to exit with code and checks the terminal
// is as it was.
func (p *ptyRun) ends(code int) {
	p.t.Helper()
	if got := p.wait(15 * time.Second); got != code {
		p.t.Fatalf("want exit %d, got %d; terminal shows %q", code, got, p.out.String())
	}
	p.termiosUnchanged()
}

// sshBanner dials addr and reads the server's version line.
func sshBanner(addr string) (net.Conn, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, "", err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.SetReadDeadline(time.Time{})
	return c, line, err
}

// ~C with EnableEscapeCommandline: -L adds a forward mid-session that
// carries a connection (to the test sshd, which answers with its banner),
// ~# lists it next to the session, -KL stops the listener, bad input gets
// OpenSSH's one line, ^C at the prompt only closes the prompt, and the
// terminal comes back as it was. The same keystrokes go to OpenSSH's ssh,
// which must answer the same.
func TestEscapeCommandLine(t *testing.T) {
	w := newWorld(t, "", "")
	for _, prog := range []string{"rssh", "ssh"} {
		t.Run(prog, func(t *testing.T) {
			p := interactive(t, w, prog, "-o", "EnableEscapeCommandline=yes")
			port := freeLocalPort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)

			p.commandLine(fmt.Sprintf("-L %d:127.0.0.1:%d", port, w.sshd.Port), "Forwarding port.")
			conn, banner, err := sshBanner(addr)
			if err != nil || !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
				t.Fatalf("the new forward gave %q, %v", banner, err)
			}

			// The shell's echo of the \r (a new prompt) may land between the
			// escape's echo and its list: wait for the list alone.
			m := p.answer("\r~#", "The following connections are open:\r\n")
			p.expectSince(m, "client-session (", 10*time.Second)
			from := conn.LocalAddr().(*net.TCPAddr).Port
			p.expectSince(m, fmt.Sprintf("direct-tcpip: listening port %d for 127.0.0.1 port %d, connect from 127.0.0.1 port %d to 127.0.0.1 port %d (",
				port, w.sshd.Port, from, port), 10*time.Second)
			// ssh would wait for it at logout.
			conn.Close()

			p.commandLine(fmt.Sprintf("-KL %d", port), "Canceled forwarding.")
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Fatal("the forward still listens after -KL")
			}
			p.commandLine(fmt.Sprintf("-KL %d", port), "Unknown port forwarding.")

			for _, c := range []struct{ line, answer string }{
				{"-L bogus", "ssh> -L bogus\r\nBad local forwarding specification."},
				{"-R x", "Bad remote forwarding specification."},
				{"-KL x", "Bad forwarding close specification."},
				{"nonsense", "Invalid command."},
				{"-h", "      -KD[bind_address:]port                 Cancel dynamic forward"},
			} {
				p.commandLine(c.line, c.answer)
			}

			m = p.answer("\r~C", "ssh> ")
			p.send("-L 1") // abandoned: ^C closes the prompt, not the session
			p.send("\x03")
			p.waitRaw()
			p.send("echo still-''here\r")
			p.expectSince(m, "still-here", 10*time.Second)

			p.send("exit 4\r")
			p.ends(4)
		})
	}
}

// Without EnableEscapeCommandline (OpenSSH 9.2's default) ~C only says so,
// and ~? does not offer it.
func TestEscapeCommandLineDisabled(t *testing.T) {
	w := newWorld(t, "", "")
	p := interactive(t, w, "rssh")
	m := p.answer("\r~?", "(Note that escapes are only recognized immediately after newline.)")
	if help := p.out.String()[m:]; strings.Contains(help, "~C") || !strings.Contains(help, " ~#   - list forwarded connections\r\n") {
		t.Fatalf("help: %q", help)
	}
	p.answer("\r~C", "commandline disabled\r\n")
	p.send("\r~.")
	p.ends(255)
}

// ~v and ~V step LogLevel and say where it is, in ssh's words, as ssh does;
// below INFO the closing "Connection to … closed." is not printed.
func TestEscapeVerbosity(t *testing.T) {
	w := newWorld(t, "", "")
	for _, prog := range []string{"rssh", "ssh"} {
		t.Run(prog, func(t *testing.T) {
			p := interactive(t, w, prog)
			for _, step := range []struct{ keys, answer string }{
				{"~v", "~v [LogLevel VERBOSE]\r\n"},
				{"~v", "~v [LogLevel DEBUG]\r\n"},
				{"~V", "~V [LogLevel VERBOSE]\r\n"},
				{"~V", "~V [LogLevel INFO]\r\n"},
				{"~V", "~V [LogLevel ERROR]\r\n"},
			} {
				p.answer("\r"+step.keys, step.answer)
			}
			p.send("exit 0\r")
			p.ends(0)
			if strings.Contains(p.out.String(), "closed.") {
				t.Fatalf("at ERROR the closing line is not printed; terminal shows %q", p.out.String())
			}
		})
	}
}
