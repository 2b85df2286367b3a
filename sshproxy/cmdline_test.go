package sshproxy

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/rssh/rssh/config"
)

// The answers are those OpenSSH 9.2's ssh gave to the same lines at its
// "ssh>" prompt.
func TestParseCommand(t *testing.T) {
	for _, c := range []struct {
		line   string
		bad    string
		cancel bool
		kind   config.ForwardKind
		spec   string
	}{
		{"-L 45678:127.0.0.1:22", "", false, config.LocalForward, "45678:127.0.0.1:22"},
		{"  L 45682:h:1", "", false, config.LocalForward, "45682:h:1"},
		{"-L45678:h:1", "", false, config.LocalForward, "45678:h:1"},
		{"-R 0:127.0.0.1:22", "", false, config.RemoteForward, "0:127.0.0.1:22"},
		{"-R 45681", "", false, config.RemoteForward, "45681"},
		{"-D 45680", "", false, config.DynamicForward, "45680"},
		{"-KL 45678", "", true, config.LocalForward, ""},
		{"-KD localhost:45680", "", true, config.DynamicForward, ""},
		{"-KR 45681", "", true, config.RemoteForward, ""},
		{"-L bogus", "Bad local forwarding specification.", false, 0, ""},
		{"-L", "Bad local forwarding specification.", false, 0, ""},
		{"-Lx", "Bad local forwarding specification.", false, 0, ""},
		{"-L 45678 h:1", "Bad local forwarding specification.", false, 0, ""},
		{"-L 45678:h:1 ", "Bad local forwarding specification.", false, 0, ""},
		{"-D 0", "Bad local forwarding specification.", false, 0, ""},
		{"-R x:y", "Bad remote forwarding specification.", false, 0, ""},
		{"-KR bogus:x", "Bad forwarding close specification.", false, 0, ""},
		{"-KL 1:h:2", "Bad forwarding close specification.", false, 0, ""},
		{"-KL 0", "Bad forwarding close specification.", false, 0, ""},
		{"x", "Invalid command.", false, 0, ""},
		{"-K", "Invalid command.", false, 0, ""},
		{"!ls", "Invalid command.", false, 0, ""},
	} {
		cmd, bad := parseCommand(c.line)
		if bad != c.bad {
			t.Errorf("%q: bad %q, want %q", c.line, bad, c.bad)
			continue
		}
		if bad == "" && (cmd.cancel != c.cancel || cmd.kind != c.kind || cmd.spec != c.spec) {
			t.Errorf("%q: got %+v", c.line, cmd)
		}
	}
	for _, line := range []string{"", "  ", "-"} {
		if cmd, bad := parseCommand(line); !cmd.none || bad != "" {
			t.Errorf("%q: want nothing to do, got %+v %q", line, cmd, bad)
		}
	}
	for _, line := range []string{"-h", "h", "?", "H anything"} {
		if cmd, _ := parseCommand(line); !cmd.help {
			t.Errorf("%q: want help", line)
		}
	}
}

type closeCounter struct{ n *int }

func (c closeCounter) Close() error { *c.n++; return nil }

func mustForward(t *testing.T, spec string, kind config.ForwardKind) config.Forward {
	t.Helper()
	f, err := config.ParseForward(spec, kind)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// -KL, -KD and -KR find listeners as OpenSSH does: local ones by port and
// normalised bind address, only of their own kind; remote ones by port and
// bind address as given, a port 0 by the port the server chose.
func TestCommandCancels(t *testing.T) {
	var log bytes.Buffer
	f := &Forwarding{fw: Forwards{Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		},
	}))}}
	closed := map[string]*int{}
	add := func(name string, kind config.ForwardKind, spec string, port int) {
		n := new(int)
		closed[name] = n
		fwd := mustForward(t, spec, kind)
		if port != 0 {
			fwd.ListenPort = port
		}
		// Two addresses, as a loopback forward listens on both families.
		f.add(&listener{kind: kind, fwd: fwd, ls: []io.Closer{closeCounter{n}, closeCounter{n}}})
	}
	add("local default", config.LocalForward, "1001:h:1", 0)
	add("local explicit", config.LocalForward, "127.0.0.1:1002:h:1", 0)
	add("dynamic", config.DynamicForward, "*:1003", 0)
	add("remote", config.RemoteForward, "1004:h:1", 0)
	add("remote chosen", config.RemoteForward, "0:h:1", 1005)
	add("remote named", config.RemoteForward, "localhost:1006:h:1", 0)
	add("local wildcard", config.LocalForward, "*:1007:h:1", 0)

	for _, c := range []struct {
		line, want, closes string
	}{
		{"-KD 1001", "Unknown port forwarding.", ""},
		{"-KL 127.0.0.1:1001", "Unknown port forwarding.", ""},
		{"-KL 1001", "Canceled forwarding.", "local default"},
		{"-KL 1001", "Unknown port forwarding.", ""},
		{"-KL localhost:1007", "Canceled forwarding.", "local wildcard"},
		{"-KL 1002", "Unknown port forwarding.", ""},
		{"-KL 127.0.0.1:1002", "Canceled forwarding.", "local explicit"},
		{"-KL 1003", "Unknown port forwarding.", ""},
		{"-KD 1003", "Canceled forwarding.", "dynamic"},
		{"-KL 1004", "Unknown port forwarding.", ""},
		{"-KR 1004", "Canceled forwarding.", "remote"},
		{"-KR 1005", "Canceled forwarding.", "remote chosen"},
		{"-KR 1006", "Unknown port forwarding.", ""},
		{"-KR localhost:1006", "Canceled forwarding.", "remote named"},
	} {
		before := map[string]int{}
		for k, n := range closed {
			before[k] = *n
		}
		log.Reset()
		f.command(c.line)
		if got := log.String(); !strings.Contains(got, c.want) {
			t.Errorf("%q: logged %q, want %q", c.line, got, c.want)
		}
		for k, n := range closed {
			want := before[k]
			if k == c.closes {
				want += 2
			}
			if *n != want {
				t.Errorf("%q: %s closed %d times, want %d", c.line, k, *n, want)
			}
		}
	}
	if len(f.listeners) != 0 {
		t.Errorf("listeners left: %d", len(f.listeners))
	}
}
