package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBridgeArgsModes(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string // substring; "" for success
		check   func(*bridgeArgs) string
	}{
		{args: nil, check: func(a *bridgeArgs) string {
			if a.allowUIDs != nil || a.logFormat != "text" {
				return fmt.Sprintf("defaults: %+v", a)
			}
			return ""
		}},
		{args: []string{"--allow-uid", "0", "--allow-uid=65534", "-v", "--log-format", "json"}, check: func(a *bridgeArgs) string {
			if fmt.Sprint(a.allowUIDs) != "[0 65534]" || a.verbose != 1 || a.logFormat != "json" {
				return fmt.Sprintf("%+v", a)
			}
			return ""
		}},
		{args: []string{"--allow-uid", "none"}, check: func(a *bridgeArgs) string {
			if a.allowUIDs == nil || len(a.allowUIDs) != 0 {
				return fmt.Sprintf("none should mean owner only, got %#v", a.allowUIDs)
			}
			return ""
		}},
		{args: []string{"--listen", "/x/b.sock", "--print-service", "systemd", "--allow-key", "SHA256:k", "-v"}, check: func(a *bridgeArgs) string {
			if got := strings.Join(a.daemonFlags, " "); got != "--listen /x/b.sock --allow-key SHA256:k -v" {
				return "daemon flags for the service: " + got
			}
			return ""
		}},
		{args: []string{"-F", "/c", "-v", "host", "22"}, check: func(a *bridgeArgs) string {
			if a.configFile != "/c" || fmt.Sprint(a.positional) != "[host 22]" {
				return fmt.Sprintf("%+v", a)
			}
			return ""
		}},
		{args: []string{"--nix-machine", "b", "--system", "x86_64-linux", "--system", "i686-linux", "--max-jobs", "4"}, check: func(a *bridgeArgs) string {
			if a.nixMachine != "b" || fmt.Sprint(a.systems) != "[x86_64-linux i686-linux]" || a.maxJobs != 4 {
				return fmt.Sprintf("%+v", a)
			}
			return ""
		}},
		{args: []string{"host"}, wantErr: "takes no destination, or HOST PORT"},
		{args: []string{"--allow-uid", "-1"}, wantErr: "not a numeric uid"},
		{args: []string{"--upstream", "/a", "h", "22"}, wantErr: "--upstream does not apply to the relay"},
		{args: []string{"--max-jobs", "2"}, wantErr: "--max-jobs does not apply to the daemon"},
		{args: []string{"--print-service", "upstart"}, wantErr: "want launchd or systemd"},
		{args: []string{"--log-format", "xml"}, wantErr: "want text or json"},
		{args: []string{"--nix-machine", "b", "--nix-module", "guix"}, wantErr: "want nix-darwin or nixos"},
		{args: []string{"--nix-machine", "b", "extra"}, wantErr: "no other arguments"},
		{args: []string{"--bogus"}, wantErr: "bogus"},
	}
	for _, c := range cases {
		a, err := parseBridgeArgs(c.args)
		if c.wantErr != "" {
			var u *usageError
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.As(err, &u) {
				t.Errorf("%q: want a usage error with %q, got %v", c.args, c.wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if msg := c.check(a); msg != "" {
			t.Errorf("%q: %s", c.args, msg)
		}
	}
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/rssh":    "/usr/bin/rssh",
		"/a b/bridge.sock": `"/a b/bridge.sock"`,
		"100%":             "100%%",
		`say "hi"`:         `"say \"hi\""`,
		"$HOME":            `"$$HOME"`,
		"SHA256:a+/b=":     "SHA256:a+/b=",
		"":                 `""`,
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestIsBridgeRelay(t *testing.T) {
	for cmd, want := range map[string]bool{
		"rssh --bridge %h %p":                     true,
		"/usr/local/bin/rssh --bridge -F c %h %p": true,
		"exec rssh --bridge %h %p":                true,
		"rssh -W %h:%p bastion":                   false,
		"cloudflared access ssh --hostname %h":    false,
	} {
		if got := isBridgeRelay(cmd); got != want {
			t.Errorf("isBridgeRelay(%q) = %v", cmd, got)
		}
	}
}

// A socket the bridge cannot make is one error line naming the path and a
// hint line with the fix, exit 255; a mistyped --listen builds no tree.
func TestBridgeListenErrorHasHint(t *testing.T) {
	dir := t.TempDir()
	for _, listen := range []string{
		filepath.Join(dir, "no", "such", "bridge.sock"),
		filepath.Join(dir, "shared", "bridge.sock"),
	} {
		os.Mkdir(filepath.Join(dir, "shared"), 0o777)
		os.Chmod(filepath.Join(dir, "shared"), 0o777)
		var out, errb bytes.Buffer
		code := run([]string{"--bridge", "--listen", listen, "--upstream", filepath.Join(dir, "agent.sock")},
			stdio{strings.NewReader(""), &out, &errb}, func(string) string { return "" })
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
			if !strings.Contains(l, "level=WARN") { // the upstream is not there: a warning only
				lines = append(lines, l)
			}
		}
		if code != 255 || len(lines) != 2 || !strings.HasPrefix(lines[0], "rssh: bridge: listen "+listen+": ") ||
			!strings.HasPrefix(lines[1], "rssh: hint: give --listen") {
			t.Errorf("--listen %s: exit %d, stderr:\n%s", listen, code, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !os.IsNotExist(err) {
		t.Errorf("the bridge made directories for a --listen whose parent is missing")
	}
}
