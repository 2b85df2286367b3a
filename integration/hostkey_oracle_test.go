package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// Known-hosts edge cases run through ssh and rssh with the same options must
// end the same way: both refuse (255, nothing run) or both run the command.
// The first case used to panic in rssh (issue 13): no user known_hosts file
// at all under strict checking.
func TestKnownHostsEdgesMatchSSH(t *testing.T) {
	w := newWorld(t, "", "")
	other := testenv.NewKey(t, w.dir, "other_host_key")
	global := w.writeFile("global_known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n", w.sshd.Port, other.AuthorizedLine()))
	goodGlobal := w.writeFile("good_global_known_hosts", w.sshd.KnownHostsLine()+"\n")
	none := []string{"-o", "UserKnownHostsFile=none"}
	cases := []struct {
		name string
		args []string
		ran  bool
	}{
		{"no files, strict", append(none, "-o", "GlobalKnownHostsFile=none", "-o", "StrictHostKeyChecking=yes"), false},
		{"no files, accept-new", append(none, "-o", "GlobalKnownHostsFile=none", "-o", "StrictHostKeyChecking=accept-new"), false},
		{"no files, no", append(none, "-o", "GlobalKnownHostsFile=none", "-o", "StrictHostKeyChecking=no"), false},
		{"changed key only in the global file, strict", append(none, "-o", "GlobalKnownHostsFile="+global, "-o", "StrictHostKeyChecking=yes"), false},
		{"changed key only in the global file, accept-new", append(none, "-o", "GlobalKnownHostsFile="+global, "-o", "StrictHostKeyChecking=accept-new"), false},
		{"known key only in the global file", append(none, "-o", "GlobalKnownHostsFile="+goodGlobal, "-o", "StrictHostKeyChecking=yes"), true},
		{"empty user file, global none, strict", []string{"-o", "UserKnownHostsFile=" + filepath.Join(w.dir, "absent"), "-o", "GlobalKnownHostsFile=none"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			marker := filepath.Join(w.remoteDir(), "ran-"+strings.NewReplacer(" ", "_", ",", "").Replace(c.name))
			args := append(append([]string{}, c.args...), "target", "touch "+marker)
			want := w.ssh(nil, args...)
			_, err := os.Stat(marker)
			os.Remove(marker)
			if sshRan := err == nil; sshRan != c.ran {
				t.Fatalf("the oracle changed: ssh ran=%v, want %v: %s", sshRan, c.ran, want)
			}
			got := w.rssh(nil, args...)
			_, err = os.Stat(marker)
			os.Remove(marker)
			if rsshRan := err == nil; rsshRan != c.ran {
				t.Errorf("rssh ran=%v, ssh ran=%v\nrssh: %s\nssh:  %s", rsshRan, c.ran, got, want)
			}
			if got.code != want.code {
				t.Errorf("exit status: rssh %d, ssh %d\nrssh: %s\nssh:  %s", got.code, want.code, got, want)
			}
			if strings.Contains(got.stderr, "panic") || strings.Contains(got.stderr, "goroutine ") {
				t.Errorf("rssh panicked: %s", got)
			}
			if !c.ran && !strings.HasPrefix(got.stderr, "rssh: ") {
				t.Errorf("refusal should be an rssh: line: %q", got.stderr)
			}
		})
	}
}

// A -i file that is not there is a warning and the next identity (the
// config's, the agent's) is tried, as ssh does; a missing IdentityFile in
// the config is skipped quietly by both.
func TestMissingIdentityFileMatchesSSH(t *testing.T) {
	w := newWorld(t, "", "")
	agent := testenv.StartAgent(t)
	agent.Add(t, w.key)
	missing := filepath.Join(w.dir, "absent", "id_x")
	warning := "Warning: Identity file " + missing + " not accessible: No such file or directory.\n"
	noCfgKey := w.writeFile("ssh_config_nokey", hostBlock("target", w.sshd, w.user, filepath.Join(w.dir, "absent", "id_cfg"), w.knownHosts, ""))
	cases := []struct {
		name   string
		config string
		agent  bool
		args   []string
		stderr string
	}{
		{"-i missing, config key next", w.config, false, []string{"-i", missing}, warning},
		{"-i missing, agent next", noCfgKey, true, []string{"-o", "IdentitiesOnly=no", "-i", missing}, warning},
		{"IdentityFile missing, agent next", noCfgKey, true, []string{"-o", "IdentitiesOnly=no"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := w.env
			if c.agent {
				w.env = append(append([]string{}, env...), "SSH_AUTH_SOCK="+agent.Sock)
			}
			defer func() { w.env = env }()
			args := append(append([]string{"-F", c.config}, c.args...), "target", "echo ok")
			want := w.run(nil, w.sshBin(), args...)
			got := w.run(nil, rsshBin, args...)
			if want.code != 0 || want.stdout != "ok\n" || want.stderr != c.stderr {
				t.Fatalf("the oracle changed: ssh %s", want)
			}
			if got.code != want.code || got.stdout != want.stdout || got.stderr != want.stderr {
				t.Errorf("rssh differs from ssh\nrssh: %s\nssh:  %s", got, want)
			}
		})
	}
}
