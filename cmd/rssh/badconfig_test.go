package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config with bad lines: rssh reports each (file:line, ssh's words),
// then ssh's "terminating, N bad configuration options", prints nothing on
// stdout and exits 255, as ssh -G does (config.TestBadOptionsAsSSH holds
// the lines equal to the real ssh's).
func TestBadConfigLinesAllReported(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("User a\nBogus yes\nPort 70000\nHost *\n  BatchMode maybe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"-G", "-F", cfg, "h"}, stdio{strings.NewReader(""), &out, &errb}, func(string) string { return "" })
	want := "rssh: " + cfg + ":2: bad configuration option: bogus\n" +
		"rssh: " + cfg + ":3: bad port '70000'\n" +
		"rssh: " + cfg + ":5: unsupported option \"maybe\"\n" +
		"rssh: " + cfg + ": terminating, 3 bad configuration options\n"
	if code != 255 || out.Len() != 0 || errb.String() != want {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 255 and:\n%s", code, out.String(), errb.String(), want)
	}
}
