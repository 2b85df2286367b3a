package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RekeyLimit reads as readconf.c reads it; where ssh is installed its -G
// line ("rekeylimit BYTES SECONDS") must say the same.
func TestRekeyLimit(t *testing.T) {
	for _, tt := range []struct {
		line     string
		bytes    uint64
		interval time.Duration
	}{
		{"", 0, 0},
		{"RekeyLimit default", 0, 0},
		{"RekeyLimit 16", 16, 0},
		{"RekeyLimit 256k", 256 << 10, 0},
		{"RekeyLimit 1.5M", 3 << 19, 0},
		{"RekeyLimit 1G 1h", 1 << 30, time.Hour},
		{"RekeyLimit default 5", 0, 5 * time.Second},
		{"RekeyLimit 0 none", 0, 0},
		{"RekeyLimit 2K 1m30s\nRekeyLimit 4K 10", 2 << 10, 90 * time.Second},
	} {
		c, cfg := resolveString(t, "Host *\n"+tt.line+"\n", "h")
		if c.RekeyLimit != tt.bytes || c.RekeyInterval != tt.interval {
			t.Errorf("%q: RekeyLimit %d %v, want %d %v", tt.line, c.RekeyLimit, c.RekeyInterval, tt.bytes, tt.interval)
		}
		ssh, err := exec.LookPath("ssh")
		if err != nil {
			continue
		}
		cmd := exec.Command(ssh, "-G", "-F", cfg, "h")
		cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(cfg))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ssh -G: %v", err)
		}
		want := "rekeylimit " + strconv.FormatUint(tt.bytes, 10) + " " + strconv.Itoa(int(tt.interval/time.Second)) + "\n"
		if !strings.Contains(string(out), want) {
			t.Errorf("%q: ssh -G does not print %q", tt.line, want)
		}
	}
}

// LocalCommand: first value wins, "none" clears it, and its tokens are
// expanded only when it is run (ssh -G accepts an unknown token in it).
func TestLocalCommand(t *testing.T) {
	c, _ := resolveString(t, `Host box
  HostName 127.0.0.1
  Port 2222
  User admin
  PermitLocalCommand yes
  LocalCommand echo %n %h %p %r %u %T %%
Host *
  LocalCommand echo second
`, "box")
	if !c.PermitLocalCommand {
		t.Error("PermitLocalCommand not set")
	}
	got, err := c.ExpandLocalCommand()
	if want := "echo box 127.0.0.1 2222 admin u NONE %"; err != nil || got != want {
		t.Errorf("ExpandLocalCommand = %q, %v; want %q", got, err, want)
	}

	c, _ = resolveString(t, "LocalCommand none\nLocalCommand echo later\n", "h")
	if c.LocalCommand != "" || c.PermitLocalCommand {
		t.Errorf("LocalCommand none: %q, permit %v", c.LocalCommand, c.PermitLocalCommand)
	}

	c, _ = resolveString(t, "LocalCommand echo %z\n", "h")
	if _, err := c.ExpandLocalCommand(); err == nil || !strings.Contains(err.Error(), "unknown %-token %z") {
		t.Errorf("ExpandLocalCommand with %%z: %v", err)
	}
}
