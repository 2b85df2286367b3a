package integration

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// Each kind of bad input gets one "rssh: …" line (and at most a hint line)
// that names what is wrong and where, and exit 255, before anything runs.
func TestBadInputOneClearLine(t *testing.T) {
	w := newWorld(t, "", "")
	dead := deadPort(t)
	badPort := w.writeFile("bad_port", "Host target\n\tHostName 127.0.0.1\n\tPort 70000\n")
	unsupported := w.writeFile("unsupported", "Host *\n\tUser x\nMatch tagged foo\n\tUser y\n")
	cases := []struct {
		name string
		args []string
		want []string // substrings of the first line
	}{
		{"unknown option", []string{"-Z", "target", "true"}, []string{"unknown option", "Z"}},
		{"bad port in config", []string{"-F", badPort, "target", "true"}, []string{badPort + ":3", "70000"}},
		{"unsupported construct", []string{"-F", unsupported, "target", "true"}, []string{unsupported + ":3"}},
		{"dead port", []string{"-p", strconv.Itoa(dead), "target", "true"}, []string{"127.0.0.1", strconv.Itoa(dead), "refused"}},
		{"unparseable -L", []string{"-L", "8080:nohostport", "target", "true"}, []string{"bad local forwarding specification", "'8080:nohostport'"}},
		{"unparseable -R", []string{"-R", "x:y:z", "target", "true"}, []string{"bad remote forwarding specification", "'x:y:z'"}},
		{"unparseable LocalForward", []string{"-o", "LocalForward 8080", "target", "true"}, []string{"command-line", "target"}},
		{"-W without a target", []string{"target", "-W"}, []string{"option requires an argument -- W"}},
		{"-W not host:port", []string{"-W", "foo", "target"}, []string{"bad stdio forwarding specification", "'foo'"}},
		{"-W to a refused port", []string{"-W", "127.0.0.1:" + strconv.Itoa(dead), "target"}, []string{"stdio forwarding", "127.0.0.1:" + strconv.Itoa(dead), "Connection refused"}},
		{"refused -R with ExitOnForwardFailure", []string{"-o", "ExitOnForwardFailure=yes", "-R", "22:127.0.0.1:22", "target", "true"}, []string{"remote port forwarding failed", "22"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := w.run(nil, rsshBin, append([]string{"-F", w.config}, c.args...)...)
			if c.args[0] == "-F" {
				r = w.run(nil, rsshBin, c.args...)
			}
			if r.code != 255 || r.stdout != "" {
				t.Fatalf("want exit 255 and no stdout, got %s", r)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			first := lines[0]
			if !strings.HasPrefix(first, "rssh: ") {
				t.Fatalf("first line should start with 'rssh: ': %q", r.stderr)
			}
			for _, s := range c.want {
				if !strings.Contains(first, s) {
					t.Errorf("first line %q should name %q", first, s)
				}
			}
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, "rssh: ") && strings.HasSuffix(l, " bad configuration options") {
					continue // ssh's count after a file's bad lines
				}
				if !strings.HasPrefix(l, "rssh: hint: ") && !strings.HasPrefix(l, "usage:") && !strings.HasPrefix(l, "       ") && !strings.HasPrefix(l, "            ") {
					t.Errorf("unexpected extra line %q", l)
				}
			}
		})
	}
}

// deadPort is a loopback port with nothing listening.
func deadPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

// ConnectTimeout bounds the banner exchange too, as in OpenSSH: a server that
// accepts and says nothing is given up on.
func TestConnectTimeoutCoversHandshake(t *testing.T) {
	w := newWorld(t, "", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Keep accepted conns open and silent.
	testenv.Serve(t, l, func(c net.Conn) { io.Copy(io.Discard, c) })
	port := l.Addr().(*net.TCPAddr).Port
	r := w.rssh(nil, "-o", "ConnectTimeout=1", "-p", strconv.Itoa(port), "target", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "timed out during banner exchange") {
		t.Fatalf("want a banner timeout, got %s", r)
	}
}
