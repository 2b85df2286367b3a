package main

import (
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite rssh.1 from the option table")

// rssh.1 is what the option table renders today, and man renders it.
func TestManPage(t *testing.T) {
	const path = "../../rssh.1"
	page := manPage()
	if *update {
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != page {
		t.Fatalf("rssh.1 is not what the option table renders: go test ./cmd/rssh -run TestManPage -update")
	}
	man := testenv.Need(t, "man", "man-db")
	cmd := exec.Command(man, "-l", path)
	cmd.Env = append(os.Environ(), "MANWIDTH=100", "MAN_KEEP_FORMATTING=0", "PAGER=cat", "MANPAGER=cat")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("man -l rssh.1: %v\n%s", err, stderr.String())
	}
	text := regexp.MustCompile(".\b").ReplaceAllString(string(out), "") // overstrike bold
	for _, want := range []string{"rssh - OpenSSH-compatible", "OP_SERVICE_ACCOUNT_TOKEN", "-W host:port", "--require-env", "rssh completion bash|zsh|fish"} {
		if !strings.Contains(strings.ReplaceAll(text, "‐", "-"), want) {
			t.Errorf("the rendered page lacks %q:\n%s", want, text)
		}
	}
}

// The table and the parser agree: every option letter ssh has is in the
// table with the same arity, so --help, the man page and the completions
// cannot drift from what parseArgs takes.
func TestOptionTableMatchesParser(t *testing.T) {
	seen := map[byte]bool{}
	for _, o := range options {
		known, arg := takesArg(o.flag)
		if !known || arg != (o.arg != "") {
			t.Errorf("-%c: table says argument %q, the parser's optstring says known=%v arg=%v", o.flag, o.arg, known, arg)
		}
		seen[o.flag] = true
		_, err := parseArgs(append([]string{"-" + string(o.flag)}, map[bool][]string{true: {"x"}, false: nil}[o.arg != ""]...))
		if o.refused != "" && (err == nil || !strings.Contains(err.Error(), "not supported") && !strings.Contains(err.Error(), "unsupported")) {
			t.Errorf("-%c is marked refused but parseArgs says %v", o.flag, err)
		}
	}
	for i := 0; i < len(optstring); i++ {
		if c := optstring[i]; c != ':' && !seen[c] && !strings.ContainsRune("12ky", rune(c)) {
			t.Errorf("-%c is in ssh's optstring but not in the option table", c)
		}
	}
}
