package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzResolve feeds arbitrary bytes to Resolve as a -F file: it must
// return a config or an error, never panic or hang. Match exec is stubbed
// so the fuzzer runs no commands.
func FuzzResolve(f *testing.F) {
	seeds := []string{
		"Host *\n  User u\n",
		"Host a b !c\n\tHostName %h.x\nMatch host a,b exec \"true\" user u\n  Port 22\n",
		"Include conf.d/*\nMatch final all\n  SetEnv A=1 B=\"x y\"\n",
		"LocalForward [::1]:80 h:80\nRemoteForward 9\nDynamicForward 1080\n",
		"ProxyJump a,b@c:1,ssh://d@e:3\nCiphers +aes128-cbc\n",
		"User \"a#b\" # c\nIdentityFile ~/%d/${HOME}\nEscapeChar ^A\n",
		"CanonicalizeHostname yes\nMatch canonical\n  User c\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), "host")
	}
	old := runMatchExec
	runMatchExec = func(string) (int, error) { return 1, nil }
	f.Cleanup(func() { runMatchExec = old })
	f.Fuzz(func(t *testing.T, data []byte, host string) {
		if len(data) > 1<<16 || host == "" || len(host) > 256 {
			return
		}
		tmp := t.TempDir()
		cfg := filepath.Join(tmp, "config")
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Resolve(Request{Host: host, ConfigFile: cfg, Home: tmp, EnvHome: tmp, LocalUser: "u"})
		if err != nil {
			if b, ok := err.(*BadOptions); ok && len(b.Errs) > 0 {
				return // bad lines, each an *Error
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is %T, want *Error or *BadOptions", err, err)
			}
			return
		}
		var dump strings.Builder
		if err := c.Dump(&dump); err != nil {
			t.Fatal(err)
		}
		// The -G output read back as a config: no panic either.
		back := filepath.Join(tmp, "readback")
		if err := os.WriteFile(back, []byte(dump.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = Resolve(Request{Host: host, ConfigFile: back, Home: tmp, EnvHome: tmp, LocalUser: "u"})
		c.ExpandProxyCommand()
		if c.ProxyJump != "" {
			_, _ = ParseProxyJump(c.ProxyJump)
		}
	})
}
