package integration

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/testenv"
)

// The differential test runs OpenSSH's ssh and rssh with the same generated
// options and command against one test sshd and compares the outcome class:
// ran the command (exit status and stdout equal), refused before connecting
// (255, no TCP connection made), or failed at connect or auth (255 after
// connecting). A Go panic in rssh, a hang past the deadline or a class
// mismatch fails the test with the smallest option set that still shows it,
// unless knownDifferences lists it. The default batch is small enough for
// CI; -differential.n=5000 -differential.seed=N runs more locally.
var (
	diffN       = flag.Int("differential.n", 200, "number of generated cases in TestDifferential")
	diffSeed    = flag.Uint64("differential.seed", 1, "seed of TestDifferential's generator")
	diffWorkers = flag.Int("differential.workers", 3, "cases run at once in TestDifferential")
)

// knownDifferences are the mismatches that are listed, not failures. A
// difference matches when an atom of its minimal option set has the
// keyword (lowercase, or the flag as typed) and its value matches Value.
var knownDifferences = []struct {
	Keyword, Value string // Value is a regexp over the atom's value; "" matches any
	Reason         string
}{
	{"preferredauthentications", "", "rssh does not read PreferredAuthentications (it offers publickey, then keyboard-interactive and password when it can prompt); to do once branch hk's auth changes land"},
	{"rsshrequireenv", "", "rssh's own keyword: ssh refuses it unless IgnoreUnknown covers it (deliberate)"},
	{"rsshforwardsecrets", "", "rssh's own keyword: ssh refuses it unless IgnoreUnknown covers it (deliberate)"},
	{"rsshsecretconfirm", "", "rssh's own keyword: ssh refuses it unless IgnoreUnknown covers it (deliberate)"},
	{"rsshtokentransport", "", "rssh's own keyword: ssh refuses it unless IgnoreUnknown covers it (deliberate)"},
	{"rsshtokenttl", "", "rssh's own keyword: ssh refuses it unless IgnoreUnknown covers it (deliberate)"},
	{"-X", "", "rssh refuses flags for features it does not have (X11, tunnels, sharing, GSSAPI, PKCS#11) rather than ignoring them (deliberate)"},
	{"-Y", "", "as -X (deliberate)"},
	{"-K", "", "as -X (deliberate)"},
	{"-w", "", "as -X (deliberate)"},
	{"localcommand", "", "rssh does not run LocalCommand (README); ssh expands its %-tokens after connecting even under PermitLocalCommand no, so a bad token fails there"},
	{"warnweakcrypto", "", "OpenSSH 10.1's keyword: the 9.2 ssh the test runs refuses it, rssh follows 10.1 (deliberate)"},
}

// TestDifferentialCoversKeywords holds the generator to the whole keyword
// table: a keyword config accepts but the generator never tries fails here.
func TestDifferentialCoversKeywords(t *testing.T) {
	for _, k := range config.AllKeywords() {
		if len(keywordValues[k]) == 0 {
			t.Errorf("keyword %q has no values in keywordValues", k)
		}
	}
	for k := range keywordValues {
		if !slices.Contains(config.AllKeywords(), k) {
			t.Errorf("keywordValues has %q, which config does not know", k)
		}
	}
}

// The table decides by the minimal option set: a listed keyword passes, an
// unlisted one fails.
func TestDifferentialKnownTable(t *testing.T) {
	for _, c := range []struct {
		atoms []atom
		known bool
	}{
		// Fixed (missing -i, no user known_hosts): no longer excused.
		{[]atom{{Args: []string{"-i", "{NOKEY}"}}}, false},
		{[]atom{{Args: []string{"-o", "UserKnownHostsFile none"}}}, false},
		{[]atom{{Args: []string{"-X"}}}, true},
		{[]atom{{Args: []string{"-o", "LocalCommand true"}}}, true},
		{[]atom{{File: "userknownhostsfile /dev/null"}}, false},
		{[]atom{{Args: []string{"-oIPQoS=bogus"}}}, false},
		{[]atom{{Args: []string{"-C"}}, {Args: []string{"-oRsshTokenTTL=1h"}}}, true},
		{[]atom{{Args: []string{"-T"}}}, false},
	} {
		if got := knownReason(testCase{Atoms: c.atoms}) != ""; got != c.known {
			t.Errorf("%v: listed = %v, want %v", c.atoms, got, c.known)
		}
	}
}

func TestDifferential(t *testing.T) {
	sshBin := testenv.Need(t, "ssh", "openssh-client")
	testenv.Need(t, "socat", "socat")
	start := time.Now()
	d := newDiffWorld(t, sshBin)
	cases := append(slices.Clone(contradictions), generate(*diffSeed, *diffN)...)

	type failure struct {
		c     testCase
		what  string
		known string
	}
	var (
		mu       sync.Mutex
		failures []failure
		classes  = map[string]int{}
		flaky    int
	)
	work := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < max(*diffWorkers, 1); i++ {
		wk := d.newWorker(t, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range work {
				c := cases[idx]
				s, r, what := wk.compare(c)
				mu.Lock()
				classes[s.class(c)+"/"+r.class(c)]++
				mu.Unlock()
				if what == "" {
					continue
				}
				// A mismatch must show twice to count: the machine is shared
				// and a loaded sshd can drop a connection.
				if _, _, again := wk.compare(c); again == "" {
					if strings.HasPrefix(what, "panic") || strings.HasPrefix(what, "hang") {
						// Once is enough for these.
						mu.Lock()
						failures = append(failures, failure{c: c, what: what + " (did not reproduce)", known: knownReason(c)})
						mu.Unlock()
						continue
					}
					mu.Lock()
					flaky++
					mu.Unlock()
					t.Logf("case %d did not reproduce (%s): %s", idx, what, c)
					continue
				}
				min, minWhat := wk.shrink(c, what)
				f := failure{c: min, what: minWhat}
				f.known = knownReason(min)
				mu.Lock()
				failures = append(failures, f)
				mu.Unlock()
			}
		}()
	}
	for i := range cases {
		work <- i
	}
	close(work)
	wg.Wait()

	seen := map[string]bool{}
	listed := 0
	for _, f := range failures {
		key := fmt.Sprint(f.c.Atoms) // the same options with another command are the same finding
		if seen[key] {
			continue
		}
		seen[key] = true
		if f.known != "" && !strings.HasPrefix(f.what, "hang") {
			listed++
			t.Logf("known difference: %s\n\t%s\n\treason: %s", f.c, f.what, f.known)
			continue
		}
		t.Errorf("unlisted difference, minimal reproducer:\n\trssh -F CONFIG %s\n\t%s", f.c, f.what)
	}
	var cls []string
	for k, v := range classes {
		cls = append(cls, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(cls)
	t.Logf("%d cases (seed %d, %d workers) in %v: %d listed differences, %d did not reproduce; ssh/rssh classes: %s",
		len(cases), *diffSeed, *diffWorkers, time.Since(start).Round(time.Second), listed, flaky, strings.Join(cls, " "))
}

func knownReason(c testCase) string {
	for _, a := range c.Atoms {
		k, v := a.keyword()
		for _, kd := range knownDifferences {
			if kd.Keyword != k {
				continue
			}
			if kd.Value == "" || regexp.MustCompile(kd.Value).MatchString(strings.Trim(v, `"`)) {
				return kd.Reason
			}
		}
	}
	return ""
}

// diffWorld is the one sshd and key every worker uses.
type diffWorld struct {
	sshd   *testenv.SSHD
	user   string
	key    *testenv.Key
	sshBin string
	dir    string
}

func newDiffWorld(t *testing.T, sshBin string) *diffWorld {
	d := &diffWorld{sshBin: sshBin, dir: t.TempDir()}
	d.sshd = testenv.StartSSHD(t, testenv.SSHDOptions{Extra: "MaxStartups 100:30:200\nMaxSessions 50"})
	d.user = testenv.LoginUser(t)
	d.key = testenv.NewKey(t, d.dir, "id_ed25519")
	d.sshd.Authorize(t, d.user, d.key)
	return d
}

// worker runs cases one at a time through its own counting relay, so the
// number of connections it sees belongs to the run in hand.
type worker struct {
	d                *diffWorld
	dir, home, cfg   string
	kh, hkrev, nokey string
	relay            *countingRelay
	env              []string
}

func (d *diffWorld) newWorker(t *testing.T, i int) *worker {
	wk := &worker{d: d, dir: filepath.Join(d.dir, "w"+strconv.Itoa(i))}
	wk.home = filepath.Join(wk.dir, "home")
	if err := os.MkdirAll(filepath.Join(wk.home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	wk.relay = startRelay(t, d.sshd.Addr)
	wk.cfg = filepath.Join(wk.dir, "ssh_config")
	wk.kh = filepath.Join(wk.dir, "known_hosts")
	wk.hkrev = filepath.Join(wk.dir, "revoked")
	wk.nokey = filepath.Join(wk.dir, "nonexistent")
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", wk.relay.port, d.sshd.HostKey.AuthorizedLine())
	os.WriteFile(wk.kh, []byte(line), 0o600)
	os.WriteFile(wk.hkrev, []byte(d.sshd.HostKey.AuthorizedLine()+"\n"), 0o600)
	wk.env = append(cleanEnv(), "HOME="+wk.home)
	return wk
}

// outcome is how one client run ended.
type outcome struct {
	code           int
	stdout, stderr string
	conns          int64
	hung           bool
}

func (o outcome) class(c testCase) string {
	switch {
	case o.hung && c.holds():
		return "held"
	case o.hung:
		return "hang"
	case o.code != 255:
		return "ran"
	case o.conns == 0:
		return "refused"
	}
	return "failed"
}

var panicRE = regexp.MustCompile(`(?m)^(panic: |goroutine \d+ |fatal error: )|rssh: internal error`)

// compare runs c through ssh and rssh and says how they differ ("" when
// they agree).
func (wk *worker) compare(c testCase) (s, r outcome, what string) {
	args, cfg := wk.materialize(c)
	if err := os.WriteFile(wk.cfg, []byte(cfg), 0o600); err != nil {
		return s, r, "harness: " + err.Error()
	}
	s = wk.run(wk.d.sshBin, args, c)
	r = wk.run(rsshBin, args, c)
	sc, rc := s.class(c), r.class(c)
	switch {
	case panicRE.MatchString(r.stderr):
		return s, r, fmt.Sprintf("panic: rssh stderr %q", clip(r.stderr))
	case rc == "hang" || sc == "hang":
		return s, r, fmt.Sprintf("hang: ssh %s, rssh %s after %v", sc, rc, caseDeadline(c))
	case sc != rc:
		return s, r, fmt.Sprintf("class: ssh %s (exit %d, %q), rssh %s (exit %d, %q)", sc, s.code, clip(s.stderr), rc, r.code, clip(r.stderr))
	case sc == "ran" && (s.code != r.code || s.stdout != r.stdout):
		return s, r, fmt.Sprintf("ran: ssh exit %d stdout %q, rssh exit %d stdout %q", s.code, clip(s.stdout), r.code, clip(r.stdout))
	case (sc == "refused" || sc == "failed") && strings.TrimSpace(s.stderr) != "" && strings.TrimSpace(r.stderr) == "":
		return s, r, fmt.Sprintf("silent: ssh said %q, rssh nothing", clip(s.stderr))
	}
	return s, r, ""
}

// shrink drops atoms one at a time while the case still fails.
func (wk *worker) shrink(c testCase, what string) (testCase, string) {
	for changed := true; changed && len(c.Atoms) > 1; {
		changed = false
		for i := range c.Atoms {
			try := testCase{Command: c.Command, Atoms: slices.Delete(slices.Clone(c.Atoms), i, i+1)}
			if _, _, w := wk.compare(try); w != "" {
				c, what, changed = try, w, true
				break
			}
		}
	}
	return c, what
}

// materialize fills the placeholders and splits the atoms into argv and
// the config file.
func (wk *worker) materialize(c testCase) ([]string, string) {
	rep := strings.NewReplacer(
		"{PORT}", strconv.Itoa(wk.relay.port), "{DEAD}", strconv.Itoa(deadPortNum()),
		"{FREE}", strconv.Itoa(deadPortNum()), "{KEY}", wk.d.key.Path, "{NOKEY}", wk.nokey,
		"{KH}", wk.kh, "{HKREV}", wk.hkrev, "{DIR}", wk.dir, "{USER}", wk.d.user,
	)
	var args []string
	var file strings.Builder
	file.WriteString("Host target\n")
	for _, a := range c.Atoms {
		if a.File != "" {
			file.WriteString("\t" + rep.Replace(a.File) + "\n")
			continue
		}
		for _, s := range a.Args {
			args = append(args, rep.Replace(s))
		}
	}
	fmt.Fprintf(&file, "Host target\n\tHostName 127.0.0.1\n\tPort %d\n\tUser %s\n\tIdentityFile %s\n\tIdentitiesOnly yes\n"+
		"\tUserKnownHostsFile %s\n\tGlobalKnownHostsFile /dev/null\n\tStrictHostKeyChecking yes\n\tBatchMode yes\n",
		wk.relay.port, wk.d.user, wk.d.key.Path, wk.kh)
	args = append([]string{"-F", wk.cfg}, args...)
	return append(args, "target", c.Command), file.String()
}

func caseDeadline(c testCase) time.Duration {
	if c.holds() {
		return 4 * time.Second
	}
	return 25 * time.Second
}

// run runs one client in its own process group, killed whole at the
// deadline.
func (wk *worker) run(bin string, args []string, c testCase) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), caseDeadline(c))
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = wk.env
	cmd.Dir = wk.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 3 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	before := wk.relay.count.Load()
	err := cmd.Run()
	o := outcome{stdout: out.String(), stderr: errb.String(), conns: wk.relay.count.Load() - before}
	if ctx.Err() != nil {
		o.hung, o.code = true, -1
		return o
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			o.code = ee.ExitCode()
		} else {
			o.code, o.stderr = -1, o.stderr+"\nharness: "+err.Error()
		}
	}
	return o
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func deadPortNum() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// countingRelay forwards TCP connections to the sshd and counts them, which
// is how the test tells "refused before connecting" from "failed after".
type countingRelay struct {
	port  int
	count atomic.Int64
}

func startRelay(t *testing.T, target string) *countingRelay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &countingRelay{port: l.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.count.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open[c], open[up] = true, true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				var pair sync.WaitGroup
				pair.Add(2)
				go func() { defer pair.Done(); io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				go func() { defer pair.Done(); io.Copy(c, up); c.(*net.TCPConn).CloseWrite() }()
				pair.Wait()
				mu.Lock()
				delete(open, c)
				delete(open, up)
				mu.Unlock()
				c.Close()
				up.Close()
			}()
		}
	}()
	return r
}
