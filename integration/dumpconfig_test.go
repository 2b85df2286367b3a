package integration

import (
	"strings"
	"testing"
)

// rssh -G with ssh's command-line options prints what ssh -G prints, the
// whole output, line for line. The config package's golden test covers config
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
		{"-W", "a:1", "-o", "exitonforwardfailure=no", "-o", "clearallforwardings=no", "alias"},
		{"alias", "uptime"},
		{"-o", "UpdateHostKeys=ask", "alias"},
		{"-o", "UpdateHostKeys=ask", "alias", "uptime"},
		{"-o", "user=foo", "-l", "bar", "baz@alias"},
		{"baz@alias", "-o", "user=foo", "-l", "bar"},
		{"-o", "ipqos=cs1", "-o", "tunneldevice=3:4", "alias"},
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
		if want.stdout != got.stdout {
			t.Errorf("%q: rssh -G differs from ssh -G (- ssh, + rssh):\n%s", args, lineDiff(want.stdout, got.stdout))
		}
		// The output read back as the config, for the same host (its
		// "host" line), gives the same output in ssh and rssh.
		host, _, _ := strings.Cut(strings.TrimPrefix(got.stdout, "host "), "\n")
		back := w.writeFile("readback", got.stdout)
		want = w.ssh(nil, "-G", "-F", back, host)
		got = w.run(nil, rsshBin, "-G", "-F", back, host)
		if want.code != got.code || want.stdout != got.stdout {
			t.Errorf("%q: -G of the -G output: ssh exit %d, rssh exit %d (%s); differs (- ssh, + rssh):\n%s",
				args, want.code, got.code, got.stderr, lineDiff(want.stdout, got.stdout))
		}
	}
}

// lineDiff lists the lines at which two outputs differ.
func lineDiff(want, got string) string {
	w := strings.Split(strings.TrimRight(want, "\n"), "\n")
	g := strings.Split(strings.TrimRight(got, "\n"), "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("  - " + a + "\n  + " + c + "\n")
		}
	}
	return b.String()
}
