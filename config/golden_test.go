package config

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// The golden test holds Resolve+Dump equal to the real ssh -G, whole output
// line for line and in order, and that output read back as a config equal
// in both (readBack), on a corpus
// of configurations. Each testdata/golden/*.txt case is a txtar-like file:
// "-- name --" headers separate files; "args" lists one ssh argument set
// per line (sh-like quoting), "config" is passed with -F, every other file
// is written under the case's temporary $HOME ("$TMP" in any file is
// replaced by that directory, "$USER" by the local user name).

type goldenCase struct {
	files map[string]string
	order []string
}

func parseCase(data string) goldenCase {
	c := goldenCase{files: map[string]string{}}
	cur := ""
	for _, line := range strings.SplitAfter(data, "\n") {
		t := strings.TrimRight(line, "\n")
		if strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") && len(t) > 6 {
			cur = t[3 : len(t)-3]
			c.order = append(c.order, cur)
			c.files[cur] = ""
			continue
		}
		if cur != "" {
			c.files[cur] += line
		}
	}
	return c
}

func requireSSH(t *testing.T) string {
	t.Helper()
	return testenv.Need(t, "ssh", "openssh-client")
}

// toRequest translates ssh arguments as the rssh command line does: flags
// become Options lines in argv order, user@host and ssh:// URLs a User
// (and Port) line.
func toRequest(t *testing.T, args []string) Request {
	t.Helper()
	var req Request
	// ssh counts -t flags (-tt forces a tty) rather than taking the first.
	ttys := 0
	for _, a := range args {
		if a == "-t" {
			ttys++
		}
	}
	ttyDone := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() string {
			if len(a) > 2 {
				return a[2:]
			}
			i++
			if i >= len(args) {
				t.Fatalf("missing value for %s", a)
			}
			return args[i]
		}
		switch {
		case strings.HasPrefix(a, "-o"):
			req.Options = append(req.Options, val())
		case strings.HasPrefix(a, "-l"):
			req.Options = append(req.Options, "User "+val())
		case strings.HasPrefix(a, "-p"):
			req.Options = append(req.Options, "Port "+val())
		case strings.HasPrefix(a, "-i"):
			req.Options = append(req.Options, "IdentityFile "+val())
		case strings.HasPrefix(a, "-J"):
			req.Options = append(req.Options, "ProxyJump "+val())
		case a == "-A":
			req.Options = append(req.Options, "ForwardAgent yes")
		case a == "-t":
			if ttyDone {
				continue
			}
			ttyDone = true
			if ttys == 1 {
				req.Options = append(req.Options, "RequestTTY yes")
			} else {
				req.Options = append(req.Options, "RequestTTY force")
			}
		case a == "-N":
			req.Options = append(req.Options, "SessionType none", "RequestTTY no")
		case strings.HasPrefix(a, "-"):
			t.Fatalf("flag %s not translated by the test", a)
		default:
			host := a
			if strings.HasPrefix(a, "ssh://") {
				u, h, p, _, err := parseSSHURI(a)
				if err != nil {
					t.Fatalf("bad uri %s", a)
				}
				if u != nil {
					req.Options = append(req.Options, "User "+*u)
				}
				if p > 0 {
					req.Options = append(req.Options, fmt.Sprintf("Port %d", p))
				}
				host = h
			} else if j := strings.LastIndexByte(a, '@'); j >= 0 {
				req.Options = append(req.Options, "User "+a[:j])
				host = a[j+1:]
			}
			req.Host = host
		}
	}
	return req
}

// dumpLines splits -G output into its lines: the whole output is
// compared, every key and its order.
func dumpLines(out string) []string {
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

func diffLines(want, got []string) string {
	var b strings.Builder
	n := max(len(want), len(got))
	for i := 0; i < n; i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w == g {
			continue // only the differing lines: the dumps are long
		}
		if i < len(want) {
			fmt.Fprintf(&b, "  - %s\n", w)
		}
		if i < len(got) {
			fmt.Fprintf(&b, "  + %s\n", g)
		}
	}
	return b.String()
}

func TestGoldenAgainstSSH(t *testing.T) {
	sshPath := requireSSH(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	cases, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	pairs, readBacks := 0, 0
	for _, file := range cases {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c := parseCase(string(data))
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			// ${HOME} in a config must mean the same to both sides.
			t.Setenv("HOME", tmp)
			subst := strings.NewReplacer("$TMP", tmp, "$USER", u.Username)
			for _, f := range c.order {
				if f == "args" {
					continue
				}
				p := filepath.Join(tmp, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(subst.Replace(c.files[f])), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(tmp, "config")
			for _, line := range strings.Split(c.files["args"], "\n") {
				line = strings.TrimSpace(subst.Replace(line))
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				args, ok := argvSplit(line)
				if !ok {
					t.Fatalf("bad args line %q", line)
				}
				pairs++
				cmd := exec.Command(sshPath, append([]string{"-G", "-F", cfg}, args...)...)
				cmd.Env = append(os.Environ(), "HOME="+tmp)
				cmd.Dir = tmp
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, sshErr := cmd.Output()

				req := toRequest(t, args)
				req.ConfigFile = cfg
				req.Home = u.HomeDir
				req.EnvHome = tmp
				req.LocalUser = u.Username
				conf, err := Resolve(req)
				if sshErr != nil {
					if err == nil {
						t.Errorf("args %q: ssh failed (%v: %s) but Resolve succeeded", line, sshErr, strings.TrimSpace(stderr.String()))
					}
					continue
				}
				if err != nil {
					t.Errorf("args %q: Resolve: %v (ssh succeeded)", line, err)
					continue
				}
				var b bytes.Buffer
				if err := conf.Dump(&b); err != nil {
					t.Fatal(err)
				}
				want := dumpLines(string(out))
				got := dumpLines(b.String())
				if strings.Join(want, "\n") != strings.Join(got, "\n") {
					t.Errorf("args %q: -G differs (- ssh, + rssh):\n%s", line, diffLines(want, got))
				}
				if err := inKeywordOrder(got); err != "" {
					t.Errorf("args %q: %s", line, err)
				}
				if readBack(t, sshPath, tmp, fmt.Sprintf("readback-%d", pairs), req, b.String(), line) {
					readBacks++
				}
			}
		})
	}
	t.Logf("%d (config, args) pairs, %d read back", pairs, readBacks)
	if readBacks < pairs/2 {
		t.Errorf("only %d of %d -G outputs read back as a config", readBacks, pairs)
	}
}

// readBack feeds rssh's -G output back as the config (-F) to both ssh -G
// and Resolve, for the same destination, as OpenSSH's regress
// sshcfgparse.sh does with ssh's own: both must accept it and print the
// same, or both refuse it.
func readBack(t *testing.T, sshPath, tmp, name string, orig Request, dump, line string) bool {
	t.Helper()
	file := filepath.Join(tmp, name)
	if err := os.WriteFile(file, []byte(dump), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshPath, "-G", "-F", file, orig.Host)
	cmd.Env = append(os.Environ(), "HOME="+tmp)
	cmd.Dir = tmp
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, sshErr := cmd.Output()
	conf, err := Resolve(Request{Host: orig.Host, ConfigFile: file, Home: orig.Home,
		EnvHome: orig.EnvHome, LocalUser: orig.LocalUser})
	switch {
	case sshErr != nil && err != nil:
		// ssh -G quotes nothing, so a value with blanks, quotes or a
		// control character does not read back: ssh's limit, kept.
		t.Logf("args %q: -G output does not read back, in ssh (%s) nor rssh (%v)", line, strings.TrimSpace(stderr.String()), err)
		return false
	case sshErr != nil:
		t.Errorf("args %q: ssh -G refuses rssh's -G output (%s) but rssh reads it back", line, strings.TrimSpace(stderr.String()))
		return false
	case err != nil:
		t.Errorf("args %q: rssh cannot read back its -G output: %v (ssh can)", line, err)
		return false
	}
	var b bytes.Buffer
	if err := conf.Dump(&b); err != nil {
		t.Fatal(err)
	}
	if want, got := dumpLines(string(out)), dumpLines(b.String()); strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("args %q: -G of the -G output differs (- ssh, + rssh):\n%s", line, diffLines(want, got))
	}
	return true
}

// inKeywordOrder checks that each line's key is one Keywords lists, in its
// order.
func inKeywordOrder(lines []string) string {
	idx := map[string]int{}
	for i, k := range Keywords() {
		idx[k] = i
	}
	last := 0
	for _, l := range lines {
		k, _, _ := strings.Cut(l, " ")
		i, ok := idx[k]
		if !ok {
			return fmt.Sprintf("key %q is not in Keywords()", k)
		}
		if i < last {
			return fmt.Sprintf("key %q out of Keywords() order", k)
		}
		last = i
	}
	return ""
}
