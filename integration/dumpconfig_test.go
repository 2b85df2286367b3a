package integration

import (
	"slices"
	"strings"
	"testing"

	"github.com/rssh/rssh/config"
)

// rssh -G with ssh's command-line options prints what ssh -G prints, for
// every keyword rssh prints. The config package's golden test covers config
// files; this covers the translation of argv (-l, -p, -i, -J, -o, user@host,
// ssh://, -A, -T, -N, -v, -q …) into the same resolution.
func TestDumpConfigArgvMatchesSSH(t *testing.T) {
	w := newWorld(t, "", "")
	cfg := w.writeFile("argv_config", `Host alias
	HostName real.example.com
	User configured
	Port 2201
	IdentityFile ~/.ssh/id_alias
Host *
	ForwardAgent no
	RequestTTY auto
`)
	cases := [][]string{
		{"alias"},
		{"-l", "cli", "alias"},
		{"cli@alias"},
		{"-l", "first", "second@alias"},
		{"-oUser=opt", "-l", "cli", "alias"},
		{"-p", "2222", "alias"},
		{"-p2222", "-oPort=3333", "alias"},
		{"-oPort=3333", "-p", "2222", "alias"},
		{"ssh://uri@alias:2999"},
		{"-i", w.key.Path, "-i", w.key.Path + ".pub", "alias"},
		{"-J", "jumper@jh:2022", "alias"},
		{"-A", "-T", "-N", "-q", "alias"},
		{"-vv", "-tt", "alias"},
		{"-a", "-t", "-C", "-4", "alias"},
		{"-n", "-s", "alias", "sftp"},
		{"-f", "alias", "true"},
		{"-f", "-N", "alias"},
		{"-N", "-t", "alias"},
		{"-oForkAfterAuthentication=yes", "-N", "alias"},
		{"-e", "none", "-b", "127.0.0.1", "alias"},
		{"-B", "lo", "alias"},
		{"-c", "aes128-gcm@openssh.com", "-m", "hmac-sha2-256", "alias"},
		{"-L", "8080:localhost:80", "-R", "9090:127.0.0.1:90", "-D", "1080", "alias"},
		{"-R", "7070", "-R", "127.0.0.1:7071", "-R", "localhost:0", "-R", "[::1]:7073", "-R", "*:7074", "alias"},
		{"-W", "target:22", "alias"},
		{"-o", "SetEnv A=1 B=\"two words\"", "-o", "SendEnv LANG", "alias"},
		{"-oProxyCommand=nc %h %p", "other-host"},
		{"alias", "-l", "after"},
	}
	for _, args := range cases {
		full := append([]string{"-G", "-F", cfg}, args...)
		want := w.ssh(nil, full...)
		got := w.run(nil, rsshBin, full...)
		if want.code != 0 || got.code != 0 {
			t.Errorf("%q: ssh exit %d (%s), rssh exit %d (%s)", args, want.code, want.stderr, got.code, got.stderr)
			continue
		}
		sshLines := map[string]bool{}
		for _, l := range strings.Split(want.stdout, "\n") {
			sshLines[l] = true
		}
		for _, l := range strings.Split(strings.TrimSpace(got.stdout), "\n") {
			if strings.HasPrefix(l, "rssh") {
				continue // rssh's own settings, after ssh's lines
			}
			if key, _, _ := strings.Cut(l, " "); slices.Contains(config.NewerKeywords(), key) {
				continue // OpenSSH 10's, which the 9.2 ssh here does not print
			}
			if !sshLines[l] {
				key, _, _ := strings.Cut(l, " ")
				var sshHas []string
				for s := range sshLines {
					if strings.HasPrefix(s, key+" ") {
						sshHas = append(sshHas, s)
					}
				}
				t.Errorf("%q: rssh -G printed %q; ssh -G has %q", args, l, sshHas)
			}
		}
	}
}
