package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Each bad input is one *Error naming file and line; where ssh itself
// rejects the input, the test checks that it does.
func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		options []string
		host    string
		line    int    // expected Pos.Line (0: no line)
		file    string // expected Pos.File when not the config file
		msg     string // substring of the message
		sshToo  bool   // ssh -G must fail as well
	}{
		{"unknown match criterion", "Host x\n  User a\nMatch foo bar\n", nil, "h", 3, "", "unsupported match attribute foo", true},
		{"bad port", "Host *\n\tPort 70000\n", nil, "h", 2, "", `bad port '70000'`, true},
		{"bad port in a block that does not apply", "Host other\n Port 0\n", nil, "h", 2, "", "bad port", true},
		{"unknown keyword", "User a\nBogusOption yes\n", nil, "h", 2, "", "bad configuration option: bogusoption", true},
		{"unknown keyword in a block that does not apply", "Host nomatch\n  NoSuchKeyword yes\n", nil, "h", 2, "", "bad configuration option", true},
		{"unterminated quote", "User \"abc\n", nil, "h", 1, "", "invalid quotes", true},
		{"extra arguments", "User a b\n", nil, "h", 1, "", "extra arguments", true},
		{"match all combined", "Match all host x\n", nil, "h", 1, "", "cannot be combined", true},
		{"match without criteria argument", "Match host\n", nil, "h", 1, "", "missing Match criteria", true},
		{"no argument", "HostName\n", nil, "h", 1, "", "no argument after keyword", true},
		{"bad yes/no", "BatchMode maybe\n", nil, "h", 1, "", `unsupported option "maybe"`, true},
		{"bad time", "ConnectTimeout 5x\n", nil, "h", 1, "", "invalid time value", true},
		{"bad integer", "ConnectionAttempts many\n", nil, "h", 1, "", "integer value invalid", true},
		{"bad cipher", "Ciphers aes128-ctr,rot13\n", nil, "h", 1, "", "bad SSH2 cipher spec", true},
		{"bad forward", "LocalForward 80\n", nil, "h", 1, "", "missing target argument", true},
		{"bad proxyjump", "ProxyJump u@h:0\n", nil, "h", 1, "", "invalid ProxyJump", true},
		{"bad setenv", "SetEnv NOEQUALS\n", nil, "h", 1, "", "invalid SetEnv", true},
		{"unknown percent token", "RemoteCommand echo %j\n", nil, "h", 1, "", "unknown %-token %j", true},
		{"unknown token in match exec", "Match exec \"echo %z\"\n", nil, "h", 1, "", "unknown %-token %z", true},
		{"include loop", "Include $TMP/config\n", nil, "h", 1, "", "too many recursive configuration includes", true},
		{"command-line bad port", "", []string{"Port=99999"}, "h", 0, "command-line", `bad port '99999'`, true},
		{"command-line host", "", []string{"Host x"}, "h", 0, "command-line", "not supported as a command-line option", true},
		{"command-line unknown", "", []string{"Bogus 1"}, "h", 0, "command-line", "bad configuration option", true},
		{"canonicalize with domains", "CanonicalizeHostname yes\nCanonicalDomains example.com\n", nil, "h", 1, "", "not supported by rssh", false},
		{"canonicalize with cnames", "CanonicalizeHostname always\nCanonicalizePermittedCNAMEs *.a:*.b\n", nil, "h", 1, "", "not supported by rssh", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			cfg := filepath.Join(tmp, "config")
			content := strings.ReplaceAll(tt.config, "$TMP", tmp)
			if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Resolve(Request{Host: tt.host, Options: tt.options, ConfigFile: cfg,
				Home: tmp, EnvHome: tmp, LocalUser: "tester"})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Resolve error = %v, want *Error", err)
			}
			wantFile := cfg
			if tt.file != "" {
				wantFile = tt.file
			}
			if ce.Pos.File != wantFile || ce.Pos.Line != tt.line {
				t.Errorf("error at %s, want %s:%d (%v)", ce.Pos, wantFile, tt.line, err)
			}
			if !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("error %q does not say %q", ce.Msg, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") || ce.Msg != strings.ToLower(ce.Msg[:1])+ce.Msg[1:] {
				t.Errorf("error %q is not one lowercase line", err)
			}
			if tt.sshToo {
				if ssh, lerr := exec.LookPath("ssh"); lerr == nil {
					args := []string{"-G", "-F", cfg}
					for _, o := range tt.options {
						args = append(args, "-o", o)
					}
					cmd := exec.Command(ssh, append(args, tt.host)...)
					cmd.Env = append(os.Environ(), "HOME="+tmp)
					if out, err := cmd.CombinedOutput(); err == nil {
						t.Errorf("ssh -G accepted what Resolve rejects:\n%s", out)
					}
				}
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := Resolve(Request{Host: "h", ConfigFile: missing, Home: "/nonexistent", LocalUser: "u"})
	var ce *Error
	if !errors.As(err, &ce) || ce.Pos.File != missing {
		t.Fatalf("Resolve = %v, want *Error naming %s", err, missing)
	}
	if !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %q should say why", err)
	}
}

func TestDefaultFilesMayBeMissing(t *testing.T) {
	tmp := t.TempDir()
	c, err := Resolve(Request{Host: "h", Home: tmp, EnvHome: tmp, LocalUser: "u",
		SystemConfig: filepath.Join(tmp, "no_ssh_config")})
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "u" || c.Port != 22 || c.Hostname != "h" {
		t.Errorf("got %+v", c)
	}
}

func TestBadPermissionsOnInclude(t *testing.T) {
	tmp := t.TempDir()
	inc := filepath.Join(tmp, "inc.conf")
	if err := os.WriteFile(inc, []byte("User x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(inc, 0o666); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(tmp, "config")
	if err := os.WriteFile(cfg, []byte("Include "+inc+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Resolve(Request{Host: "h", ConfigFile: cfg, Home: tmp, EnvHome: tmp, LocalUser: "u"})
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "bad owner or permissions") {
		t.Fatalf("Resolve = %v, want a permissions error", err)
	}
}

// Every keyword rssh accepts is one ssh accepts (so rssh is not more
// permissive), checked against the real binary — except rssh's own Rssh*
// settings, which ssh accepts under "IgnoreUnknown Rssh*", and keywords of a
// later OpenSSH (NewerKeywords).
func TestKeywordsAcceptedBySSH(t *testing.T) {
	ssh := requireSSH(t)
	tmp := t.TempDir()
	for kw := range keywords {
		if slices.Contains(NewerKeywords(), kw) {
			continue // a later OpenSSH's keyword, which this 9.2 ssh does not know
		}
		if strings.HasPrefix(kw, "rssh") {
			cfg := filepath.Join(tmp, "c")
			os.WriteFile(cfg, []byte("IgnoreUnknown Rssh*\n"+kw+" x\n"), 0o644)
			out, err := exec.Command(ssh, "-G", "-F", cfg, "h").CombinedOutput()
			if err != nil {
				t.Errorf("ssh rejects %s even under IgnoreUnknown Rssh*: %s", kw, out)
			}
			continue
		}
		cfg := filepath.Join(tmp, "c")
		if err := os.WriteFile(cfg, []byte(kw+" x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ssh, "-G", "-F", cfg, "h")
		cmd.Env = append(os.Environ(), "HOME="+tmp)
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "Bad configuration option") {
			t.Errorf("ssh does not know %s", kw)
		}
	}
}
