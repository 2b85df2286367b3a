package integration

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rssh -Q answers as ssh -Q does, and what it lists for ciphers, MACs and
// key exchanges is what it really uses: each one the test sshd also allows
// is forced with -o and must be the one the server's log shows negotiated.
func TestQueryListsWhatRsshUses(t *testing.T) {
	w := newWorld(t, "", "")
	q := func(args ...string) result { return w.run(nil, rsshBin, append([]string{"-Q"}, args...)...) }

	if r := q("help"); r.code != 0 || !strings.Contains(r.stdout, "cipher\n") || !strings.Contains(r.stdout, "key-sig\n") {
		t.Errorf("-Q help: %s", r)
	}
	if r := q("no-such-query"); r.code != 255 || !strings.Contains(r.stderr, `unsupported query "no-such-query"`) {
		t.Errorf("-Q no-such-query: %s", r)
	}
	// As ssh, -Q is answered at once: the rest of argv is not read.
	if r := q("protocol-version", "-Z", "junk"); r.code != 0 || r.stdout != "2\n" {
		t.Errorf("-Q protocol-version with junk after it: %s", r)
	}
	if a, b := q("cipher"), q("Ciphers"); a.code != 0 || a.stdout != b.stdout {
		t.Errorf("-Q cipher and -Q Ciphers differ:\n%s\n%s", a, b)
	}

	// Every name -Q lists can be asked for: the config takes it (ssh's
	// try-ciphers and kextype regress tests feed -Q's lists back to -c,
	// -m and -o KexAlgorithms), and none is refused as a bad spec.
	for _, c := range []struct{ query, keyword, flag string }{
		{"cipher", "Ciphers", "-c"}, {"mac", "MACs", "-m"}, {"kex", "KexAlgorithms", ""},
	} {
		for _, alg := range strings.Fields(q(c.query).stdout) {
			args := []string{"-G", "-o" + c.keyword + "=" + alg, "target"}
			if c.flag != "" {
				args = []string{"-G", c.flag, alg, "target"}
			}
			if r := w.rssh(nil, args...); r.code != 0 || !strings.Contains(r.stdout, strings.ToLower(c.keyword)+" "+alg+"\n") {
				t.Errorf("-Q %s lists %s, but rssh %s refuses it: %s", c.query, alg, strings.Join(args, " "), r)
			}
		}
	}

	// What the server allows, from sshd -T on the test's own config.
	out, err := exec.Command("/usr/sbin/sshd", "-T", "-f", filepath.Join(w.sshd.Dir, "sshd_config")).Output()
	if err != nil {
		t.Fatalf("sshd -T: %v", err)
	}
	server := map[string][]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			server[k] = strings.Split(v, ",")
		}
	}
	for _, c := range []struct {
		query, keyword, serverKey, logPrefix string
		extra                                []string
	}{
		{"cipher", "Ciphers", "ciphers", "kex: client->server cipher: ", nil},
		{"mac", "MACs", "macs", "MAC: ", []string{"-oCiphers=aes128-ctr"}},
		{"kex", "KexAlgorithms", "kexalgorithms", "kex: algorithm: ", nil},
	} {
		listed := strings.Fields(q(c.query).stdout)
		tried := 0
		for _, alg := range listed {
			if !slices.Contains(server[c.serverKey], alg) {
				continue
			}
			tried++
			before := len(w.sshd.Log())
			args := append(append([]string{"-o" + c.keyword + "=" + alg}, c.extra...), "target", "true")
			if r := w.rssh(nil, args...); r.code != 0 {
				t.Errorf("-Q %s lists %s, but rssh -o %s=%s fails: %s", c.query, alg, c.keyword, alg, r)
				continue
			}
			if log := w.sshd.Log()[before:]; !strings.Contains(log, c.logPrefix+alg) {
				t.Errorf("rssh -o %s=%s: the server did not negotiate %s", c.keyword, alg, alg)
			}
		}
		if tried < 3 {
			t.Errorf("-Q %s: only %d of %v are allowed by the test sshd; the check proves little", c.query, tried, listed)
		}
	}
}
