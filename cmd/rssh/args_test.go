package main

import (
	"github.com/rssh/rssh/sshproxy"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k 1")
	if err := os.WriteFile(key, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args    []string
		host    string
		options []string
		command []string
		check   func(*invocation) bool
	}{
		{args: []string{"host"}, host: "host"},
		{args: []string{"-p2222", "-luser", "host", "ls", "-l"}, host: "host",
			options: []string{"Port 2222", "User user"}, command: []string{"ls", "-l"}},
		{args: []string{"-vvv", "-tt", "host"}, host: "host",
			options: []string{"LogLevel DEBUG3", "RequestTTY force"},
			check:   func(i *invocation) bool { return i.verbose == 3 }},
		{args: []string{"-oUser=x", "-o", "Port 3", "u@host", "true"}, host: "host",
			options: []string{"User=x", "Port 3", "User u"}, command: []string{"true"}},
		{args: []string{"ssh://bob@example.com:2200", "uname"}, host: "example.com",
			options: []string{"User bob", "Port 2200"}, command: []string{"uname"}},
		// Options after the destination are still options; the first word after is the command.
		{args: []string{"host", "-v", "cmd", "-v"}, host: "host",
			options: []string{"LogLevel DEBUG1"}, command: []string{"cmd", "-v"}},
		{args: []string{"-i", key, "-J", "a@b:2,c", "-T", "-N", "host"}, host: "host",
			options: []string{"SessionType none", "RequestTTY no", `IdentityFile "` + key + `"`, "ProxyJump a@b:2,c"}},
		// As ssh: a -i file that is not there is a warning, not an option.
		{args: []string{"-i", "/nonexistent/k", "host"}, host: "host",
			check: func(i *invocation) bool {
				return slices.Equal(i.warnings, []string{"Warning: Identity file /nonexistent/k not accessible: No such file or directory."})
			}},
		{args: []string{"-L", "8080:localhost:80", "-R", "[::1]:9:h:7", "-D", "1080", "host"}, host: "host",
			options: []string{"LocalForward 8080 localhost:80", "RemoteForward [::1]:9 h:7", "DynamicForward 1080"}},
		{args: []string{"-G", "-F", "/dev/null", "host"}, host: "host",
			check: func(i *invocation) bool { return i.mode == modeDumpConfig && i.configFile == "/dev/null" }},
		{args: []string{"-W", "h:22", "jump"}, host: "jump",
			options: []string{"RequestTTY no", "SessionType none"},
			check:   func(i *invocation) bool { return i.stdioTarget == "h:22" }},
		{args: []string{"--", "host", "-x"}, host: "host", command: []string{"-x"}},
		{args: []string{"-V"}, check: func(i *invocation) bool { return i.mode == modeVersion }},
		// As ssh, -V answers at once: what follows is not read (found by
		// the differential test against ssh).
		{args: []string{"-V", "-Z", "host"}, check: func(i *invocation) bool { return i.mode == modeVersion }},
		{args: []string{"-C", "-V", "-o", "Bogus=1"}, check: func(i *invocation) bool { return i.mode == modeVersion }},
		{args: []string{"--env", "staging", "host", "--require-env", "cmd"}, host: "host", command: []string{"cmd"},
			check: func(i *invocation) bool { return i.env == "staging" && i.requireEnv }},
		{args: []string{"--env=none", "host"}, host: "host", check: func(i *invocation) bool { return i.env == "none" }},
		{args: []string{"host", "-G", "--rssh"}, host: "host",
			check: func(i *invocation) bool { return i.mode == modeDumpConfig && i.dumpOwn }},
	}
	for _, c := range cases {
		inv, err := parseArgs(c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if inv.host != c.host || !slices.Equal(inv.options, c.options) || !slices.Equal(inv.command, c.command) {
			t.Errorf("%q:\n got host %q options %q command %q\nwant host %q options %q command %q",
				c.args, inv.host, inv.options, inv.command, c.host, c.options, c.command)
		}
		if c.check != nil && !c.check(inv) {
			t.Errorf("%q: check failed: %+v", c.args, inv)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-Z", "host"}, "unknown option -- Z"},
		{[]string{"-p"}, "option requires an argument -- p"},
		{[]string{"-p", "70000", "host"}, "bad port"},
		{[]string{}, "no destination"},
		{[]string{"-J", "a", "-J", "b", "h"}, "only a single -J"},
		{[]string{"-X", "host"}, "not supported"},
		{[]string{"--frobnicate", "host"}, "unknown option --frobnicate"},
		{[]string{"host", "--env"}, "--env requires an argument"},
		{[]string{"--env=", "host"}, "--env needs"},
		{[]string{"-1", "host"}, "protocol v.1"},
		{[]string{"ssh://host/path"}, "invalid destination"},
		{[]string{"user@"}, "no host name"},
		{[]string{"-oProxyCommand=x", "$(evil)"}, "not a host name"},
		// Before -V, what ssh checks while reading argv is checked.
		{[]string{"-e", "ab", "-V"}, "bad escape character"},
		{[]string{"-o", "Bogus=1", "-V"}, "bad configuration option: bogus"},
		{[]string{"-c", "bogus", "-V"}, "unknown cipher type 'bogus'"},
		{[]string{"-e", "ab", "-e", "none", "host"}, "bad escape character 'ab'"},
		{[]string{"-c", "bogus", "-c", "aes128-ctr", "host"}, "unknown cipher type 'bogus'"},
		{[]string{"-c", "-aes128-ctr", "host"}, "unknown cipher type"},
		{[]string{"-m", "+hmac-sha1", "host"}, "unknown mac type"},
		{[]string{"-o", "IPQoS=x", "-V"}, "bad IPQoS value: x"},
		{[]string{"--rssh", "host"}, "--rssh goes with -G"},
	} {
		_, err := parseArgs(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want error containing %q", c.args, err, c.want)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("-p2222\x00-vvv\x00user@host\x00ls")
	f.Add("ssh://a@[::1]:22\x00-L\x001:[::1]:2")
	f.Fuzz(func(t *testing.T, s string) {
		parseArgs(strings.Split(s, "\x00"))
	})
}

func TestEscapeChar(t *testing.T) {
	for in, want := range map[string]int{"~": '~', "none": -1, "^]": 0x1d, "^A": 1, "#": '#'} {
		got := escapeChar(in)
		if want == -1 {
			want = sshproxyEscapeNone
		}
		if got != want {
			t.Errorf("escapeChar(%q) = %d, want %d", in, got, want)
		}
	}
}

var sshproxyEscapeNone = sshproxy.EscapeNone

// The user given on the command line is checked as ssh checks it (percent
// regress test, CVE-2023-51385): the first of -l and user@host only.
func TestCommandLineUserChecked(t *testing.T) {
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-l", "ok.user", "h"}, true},
		{[]string{"-l", "a b", "h"}, true},
		{[]string{"-l", "${FOO}", "h"}, false},
		{[]string{"${FOO}@h"}, false},
		{[]string{"-l", "x\ay", "h"}, false},
		{[]string{"-l", "-x", "h"}, false},
		{[]string{"-l", "a -x", "h"}, false},
		{[]string{"-l", `a\`, "h"}, false},
		{[]string{"-l", "ok", "bad;@h"}, true}, // -l came first: user@ is ignored
		{[]string{"bad;@h", "-l", "ok"}, false},
		{[]string{"-o", "User=${FOO}", "h"}, true}, // not a -l or user@ user
	} {
		_, err := parseArgs(c.args)
		if got := err == nil; got != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.args, err, c.ok)
		}
		if err != nil && err.Error() != "remote username contains invalid characters" {
			t.Errorf("%q: %v", c.args, err)
		}
	}
}
