//go:build linux

package mux

import (
	"crypto/sha1"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/testenv"
)

// TestConnHashFormula: %C is the SHA-1 of %l%h%p%r%j (OpenSSH 9.6+);
// without a jump host that is also 9.2's %l%h%p%r.
func TestConnHashFormula(t *testing.T) {
	tk := Tokens{LocalHost: "laptop.example", Host: "db.internal", Port: "2222", User: "ops", Jump: "bastion"}
	sum := sha1.Sum([]byte("laptop.example" + "db.internal" + "2222" + "ops" + "bastion"))
	if got := ConnHash(tk); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("%%C with a jump host = %s", got)
	}
	tk.Jump = ""
	sum = sha1.Sum([]byte("laptop.example" + "db.internal" + "2222" + "ops"))
	if got := ConnHash(tk); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("%%C without = %s", got)
	}
	t.Setenv("MUX_TEST_VAR", "v")
	got, err := ExpandControlPath("~/cm/%L-%l-%h-%p-%r-%j-%n-%k-%i-%d-%u-%%-${MUX_TEST_VAR}", Tokens{
		LocalHost: "laptop.example", Host: "db", Port: "22", User: "ops", Jump: "j", Alias: "dbalias",
		KeyAlias: "ka", UID: "1000", Home: "/home/me", LocalUser: "me"})
	want := "/home/me/cm/laptop-laptop.example-db-22-ops-j-dbalias-ka-1000-/home/me-me-%-v"
	if err != nil || got != want {
		t.Fatalf("got %q, %v\nwant %q", got, err, want)
	}
	for _, bad := range []string{"/tmp/%z", "/tmp/%", "/tmp/${NO_SUCH_MUX_VAR}", "/tmp/${X"} {
		if _, err := ExpandControlPath(bad, Tokens{}); err == nil {
			t.Errorf("%q expanded", bad)
		}
	}
}

// TestConnHashOpenSSH: the socket a real OpenSSH master makes for
// ControlPath DIR/%C is the one ExpandControlPath names.
func TestConnHashOpenSSH(t *testing.T) {
	r := newRig(t, testenv.SSHDOptions{LogLevel: "INFO"})
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ExpandControlPath(filepath.Join(r.dir, "%C"), Tokens{LocalHost: host, Host: "127.0.0.1",
		Port: strconv.Itoa(r.sshd.Port), User: r.user})
	if err != nil {
		t.Fatal(err)
	}
	cmd := r.ssh("-M", "-S", filepath.Join(r.dir, "%C"), "-N", "h")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	if err := testenv.WaitSocket(want, exited, 20*time.Second); err != nil {
		matches, _ := filepath.Glob(filepath.Join(r.dir, "*"))
		t.Fatalf("%v; the dir holds %v", err, matches)
	}
}

// TestForwardSpec: a forward as the protocol carries it, written back as
// a -L/-R/-D argument, parses to the same forward.
func TestForwardSpec(t *testing.T) {
	for _, f := range []Forward{
		{Type: FwdLocal, ListenPort: 8080, ConnectHost: "db", ConnectPort: 5432},
		{Type: FwdLocal, ListenHost: "*", ListenPort: 8080, ConnectHost: "::1", ConnectPort: 22},
		{Type: FwdLocal, ListenHost: "/tmp/a.sock", ListenPort: PortStreamLocal, ConnectHost: "/tmp/b.sock", ConnectPort: PortStreamLocal},
		{Type: FwdDynamic, ListenHost: "127.0.0.1", ListenPort: 1080},
		{Type: FwdRemote, ListenPort: 0, ConnectHost: "127.0.0.1", ConnectPort: 80},
		// A remote dynamic forward carries parse_forward's "socks" target.
		{Type: FwdRemote, ListenHost: "127.0.0.1", ListenPort: 9000, ConnectHost: "socks"},
		{Type: FwdRemote, ListenPort: 0, ConnectHost: "socks"},
	} {
		kind, spec := f.Spec()
		cf, err := config.ParseForward(spec, kind)
		if err != nil {
			t.Errorf("%+v: %q: %v", f, spec, err)
			continue
		}
		if got := MuxForward(kind, cf); got != f {
			t.Errorf("%q: got %+v, want %+v", spec, got, f)
		}
	}
}
