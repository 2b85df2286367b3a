// Command fakesecretop stands in for the 1Password CLI in rssh's secret
// tests (testenv.NewFakeSecretOp links it as DIR/op). It answers
// `op read [--no-newline] REF` and `op inject [-i IN] [-o OUT]` from the
// table in DIR/table.json, only when OP_SERVICE_ACCOUNT_TOKEN is the
// table's token, and is steered by files in DIR:
//
//	argv.log       every run's argv and whether the token was right (appended)
//	hold           block each run until the test releases it: the run opens
//	               the FIFO DIR/started for writing (the test's read returns
//	               its pid), then reads the FIFO DIR/release to EOF
//	fail, failmsg  fail the next N runs (N in fail) with failmsg on stderr
//	inject-verbatim-spaces
//	               op inject leaves {{ … }} tags whose reference holds a
//	               space as text, as an op that does not take them might
//
// It is a test program: it never runs in a release.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

const stamp = "[ERROR] 2026/05/04 10:32:55 "

type table struct {
	Token  string            `json:"token"`
	Values map[string][]byte `json:"values"`
	Errors map[string]string `json:"errors"` // ref → op's stderr line (after the stamp)
}

type logLine struct {
	Argv    []string `json:"argv"`
	PID     int      `json:"pid"`
	TokenOK bool     `json:"token_ok"`
	Connect bool     `json:"connect,omitempty"`
}

func main() {
	// The test runs DIR/op, a symlink to this program: argv[0] names DIR.
	self := os.Args[0]
	if !filepath.IsAbs(self) {
		die(9, "fake op: run it by its absolute path, not %q", self)
	}
	dir := filepath.Dir(self)
	var t table
	b, err := os.ReadFile(filepath.Join(dir, "table.json"))
	if err != nil {
		die(9, "fake op: %v", err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		die(9, "fake op: table: %v", err)
	}
	tok, hasTok := os.LookupEnv("OP_SERVICE_ACCOUNT_TOKEN")
	_, connect := os.LookupEnv("OP_CONNECT_TOKEN")
	ok := hasTok && tok == t.Token
	logRun(dir, logLine{Argv: os.Args[1:], PID: os.Getpid(), TokenOK: ok, Connect: connect})

	if _, err := os.Stat(filepath.Join(dir, "hold")); err == nil {
		hold(dir)
	}
	if failNext(dir) {
		os.Exit(1)
	}
	if !ok {
		die(1, stamp+"failed to DecodeSACredentials: invalid service account token")
	}
	args := os.Args[1:]
	if len(args) == 0 {
		die(2, stamp+"no command")
	}
	switch args[0] {
	case "whoami":
		fmt.Println("User Type:  SERVICE_ACCOUNT")
	case "read":
		read(&t, args[1:])
	case "inject":
		inject(&t, args[1:])
	default:
		die(2, stamp+"unknown command %q for \"op\"", args[0])
	}
}

func die(code int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(code)
}

func logRun(dir string, l logLine) {
	f, err := os.OpenFile(filepath.Join(dir, "argv.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		die(9, "fake op: %v", err)
	}
	defer f.Close()
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	b, _ := json.Marshal(l)
	f.Write(append(b, '\n'))
}

func hold(dir string) {
	s, err := os.OpenFile(filepath.Join(dir, "started"), os.O_WRONLY, 0)
	if err != nil {
		die(9, "fake op: %v", err)
	}
	fmt.Fprintf(s, "%d\n", os.Getpid())
	s.Close()
	r, err := os.Open(filepath.Join(dir, "release"))
	if err != nil {
		die(9, "fake op: %v", err)
	}
	io.Copy(io.Discard, r)
	r.Close()
}

// failNext fails this run if DIR/fail holds a count above zero.
func failNext(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "fail"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	b, _ := io.ReadAll(f)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if n <= 0 {
		return false
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(n-1)+"\n"), 0)
	msg, _ := os.ReadFile(filepath.Join(dir, "failmsg"))
	os.Stderr.Write(msg)
	return true
}

// lookup answers one reference, or exits as op does when it cannot.
func lookup(t *table, ref string) []byte {
	if m, ok := t.Errors[ref]; ok {
		die(1, stamp+"%s", m)
	}
	if v, ok := t.Values[ref]; ok {
		return v
	}
	rest, _ := strings.CutPrefix(ref, "op://")
	rest, _, _ = strings.Cut(rest, "?")
	parts := strings.Split(rest, "/")
	if len(parts) < 3 {
		die(1, stamp+"invalid secret reference %q: too few segments", ref)
	}
	die(1, stamp+"%q isn't an item in the %q vault. Specify the item with its UUID, name, or domain.", parts[1], parts[0])
	return nil
}

func read(t *table, args []string) {
	noNewline := false
	var refs []string
	for _, a := range args {
		switch a {
		case "-n", "--no-newline":
			noNewline = true
		default:
			if strings.HasPrefix(a, "-") {
				die(2, stamp+"unknown flag: %s", a)
			}
			refs = append(refs, a)
		}
	}
	if len(refs) != 1 {
		die(2, stamp+"expected exactly one secret reference")
	}
	v := lookup(t, refs[0])
	os.Stdout.Write(v)
	if !noNewline {
		os.Stdout.Write([]byte("\n"))
	}
}

var (
	enclosedRE = regexp.MustCompile(`\{\{\s*(op://[^{}]*?)\s*\}\}`)
	bareRE     = regexp.MustCompile(`op://[A-Za-z0-9\-_.?=/&]+`)
)

func inject(t *table, args []string) {
	in, out := "", ""
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-i", "--in-file":
			i++
			in = args[i]
		case "-o", "--out-file":
			i++
			out = args[i]
		default:
			die(2, stamp+"unknown flag: %s", args[i])
		}
	}
	var tpl []byte
	var err error
	if in != "" {
		tpl, err = os.ReadFile(in)
	} else {
		tpl, err = io.ReadAll(bufio.NewReader(os.Stdin))
	}
	if err != nil {
		die(1, stamp+"%v", err)
	}
	// Enclosed references first, then bare ones in what is left.
	var res []byte
	last := 0
	_, verbatim := os.Stat(filepath.Join(filepath.Dir(os.Args[0]), "inject-verbatim-spaces"))
	for _, m := range enclosedRE.FindAllSubmatchIndex(tpl, -1) {
		res = append(res, bareSubst(t, tpl[last:m[0]])...)
		if ref := string(tpl[m[2]:m[3]]); verbatim == nil && strings.Contains(ref, " ") {
			res = append(res, tpl[m[0]:m[1]]...)
		} else {
			res = append(res, lookup(t, ref)...)
		}
		last = m[1]
	}
	res = append(res, bareSubst(t, tpl[last:])...)
	if out != "" {
		if err := os.WriteFile(out, res, 0o600); err != nil {
			die(1, stamp+"%v", err)
		}
		return
	}
	os.Stdout.Write(res)
}

func bareSubst(t *table, b []byte) []byte {
	return bareRE.ReplaceAllFunc(b, func(ref []byte) []byte { return lookup(t, string(ref)) })
}
