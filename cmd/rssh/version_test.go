package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// -V, --version and --bridge --version all print the stamped version on
// stderr (as ssh -V does) and exit 0; --help names --bridge and -f.
func TestVersionAndHelp(t *testing.T) {
	want := regexp.MustCompile(`^rssh v\d+\.\d+\.\d+\S*( \(commit [0-9a-f]+(\+dirty)?\))?(, golang\.org/x/crypto \S+)?\n$`)
	for _, args := range [][]string{{"-V"}, {"--version"}, {"--bridge", "--version"}, {"--bridge", "-V"}} {
		var out, errb bytes.Buffer
		code := run(args, stdio{strings.NewReader(""), &out, &errb}, func(string) string { return "" })
		if code != 0 || out.Len() != 0 || !want.MatchString(errb.String()) {
			t.Errorf("rssh %v: exit %d, stdout %q, stderr %q; want 0, nothing, a version line", args, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, stdio{strings.NewReader(""), &out, &errb}, func(string) string { return "" }); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, s := range []string{"--bridge", "f", "--version"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help does not mention %q:\n%s", s, out.String())
		}
	}
	if !regexp.MustCompile(`\[-[0-9A-Za-z]*f[0-9A-Za-z]*\]`).MatchString(out.String()) {
		t.Errorf("--help's flag list lacks -f:\n%s", out.String())
	}
}
