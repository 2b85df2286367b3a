package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func resolveString(t *testing.T, config string, host string, opts ...string) (*Config, string) {
	t.Helper()
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "config")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Resolve(Request{Host: host, Options: opts, ConfigFile: cfg, Home: "/home/u",
		EnvHome: tmp, LocalUser: "u"})
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

// The product's contract: the first SetEnv line that applies wins whole.
func TestSetEnvFirstLineWins(t *testing.T) {
	c, cfg := resolveString(t, "Host prod\n  SetEnv RSSH_ENV=prod FOO=\"two words\"\nHost *\n  SetEnv RSSH_ENV=dev BAR=1\n", "prod")
	if want := []string{"RSSH_ENV=prod", "FOO=two words"}; !reflect.DeepEqual(c.SetEnv, want) {
		t.Errorf("SetEnv = %q, want %q", c.SetEnv, want)
	}
	if c.SetEnvPos != (Pos{File: cfg, Line: 2}) {
		t.Errorf("SetEnvPos = %v", c.SetEnvPos)
	}
	c, _ = resolveString(t, "Host prod\n  SetEnv RSSH_ENV=prod\nHost *\n  SetEnv RSSH_ENV=dev\n", "other")
	if want := []string{"RSSH_ENV=dev"}; !reflect.DeepEqual(c.SetEnv, want) {
		t.Errorf("SetEnv = %q, want %q", c.SetEnv, want)
	}
}

func TestTypedFields(t *testing.T) {
	c, _ := resolveString(t, `Host box
  HostName Box.Example.com
  User admin
  Port 2200
  IdentityFile ~/.ssh/%h_%r
  CertificateFile %d/c-%n
  UserKnownHostsFile ~/kh
  ProxyCommand nc %h %p %r %n %%
  ConnectTimeout 1m
  ServerAliveInterval 15
  AddKeysToAgent confirm 10m
  RequestTTY yes
  ForwardAgent yes
  IdentityAgent ~/agent.sock
  EscapeChar none
`, "box")
	if c.Hostname != "box.example.com" || c.User != "admin" || c.Port != 2200 || c.Host != "box" {
		t.Errorf("host fields: %+v", c)
	}
	if want := []string{"/home/u/.ssh/box.example.com_admin"}; !reflect.DeepEqual(c.IdentityFiles, want) {
		t.Errorf("IdentityFiles = %q", c.IdentityFiles)
	}
	if want := []string{"/home/u/c-box"}; !reflect.DeepEqual(c.CertificateFiles, want) {
		t.Errorf("CertificateFiles = %q", c.CertificateFiles)
	}
	if want := []string{"/home/u/kh"}; !reflect.DeepEqual(c.UserKnownHostsFiles, want) {
		t.Errorf("UserKnownHostsFiles = %q", c.UserKnownHostsFiles)
	}
	if got := c.ExpandProxyCommand(); got != "nc box.example.com 2200 admin box %" {
		t.Errorf("ExpandProxyCommand = %q", got)
	}
	if c.ConnectTimeout != time.Minute || c.ServerAliveInterval != 15*time.Second {
		t.Errorf("timeouts %v %v", c.ConnectTimeout, c.ServerAliveInterval)
	}
	if c.AddKeysToAgent != "confirm" || c.AddKeysToAgentLifetime != 10*time.Minute {
		t.Errorf("AddKeysToAgent %q %v", c.AddKeysToAgent, c.AddKeysToAgentLifetime)
	}
	if c.RequestTTY != "yes" || c.ForwardAgent != "yes" || c.IdentityAgent != "/home/u/agent.sock" || c.EscapeChar != "none" {
		t.Errorf("misc: %q %q %q %q", c.RequestTTY, c.ForwardAgent, c.IdentityAgent, c.EscapeChar)
	}
	if c.StrictHostKeyChecking != "ask" || !c.PubkeyAuthentication || c.LogLevel != "INFO" {
		t.Errorf("defaults: %q %v %q", c.StrictHostKeyChecking, c.PubkeyAuthentication, c.LogLevel)
	}
}

func TestDefaultIdentityFiles(t *testing.T) {
	c, _ := resolveString(t, "", "h")
	var want []string
	for _, f := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"} {
		want = append(want, "/home/u/.ssh/"+f)
	}
	if !reflect.DeepEqual(c.IdentityFiles, want) {
		t.Errorf("IdentityFiles = %q", c.IdentityFiles)
	}
	if want := []string{"/home/u/.ssh/known_hosts", "/home/u/.ssh/known_hosts2"}; !reflect.DeepEqual(c.UserKnownHostsFiles, want) {
		t.Errorf("UserKnownHostsFiles = %q", c.UserKnownHostsFiles)
	}
}

func TestParseProxyJump(t *testing.T) {
	tests := []struct {
		in   string
		want []Jump
		bad  bool
	}{
		{"bastion", []Jump{{Host: "bastion"}}, false},
		{"u@b:2222", []Jump{{User: "u", Host: "b", Port: 2222}}, false},
		{"a,u@[::1]:22,ssh://v@c:3", []Jump{{Host: "a"}, {User: "u", Host: "::1", Port: 22}, {User: "v", Host: "c", Port: 3}}, false},
		{"[10.0.0.1]", []Jump{{Host: "10.0.0.1"}}, false},
		{"none", nil, false},
		{"u@h:0", nil, true},
		{"@h", nil, true},
		{"a,,b", nil, true},
		{"ssh://h/path", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseProxyJump(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("ParseProxyJump(%q) error = %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseProxyJump(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"web1", "web?", true}, {"web12", "web?", false}, {"a.b.c", "*.c", true},
		{"abc", "a*b*c", true}, {"abc", "a*b*d", false}, {"", "*", true}, {"x", "", false},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "*a*a*a*a*a*a*a*a*a*a*b", false},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.s, tt.p); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v", tt.s, tt.p, got)
		}
	}
}

func TestArgvSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`a b`, []string{"a", "b"}, true},
		{`"a b" c`, []string{"a b", "c"}, true},
		{`x"y z"w`, []string{"xy zw"}, true},
		{`a # comment`, []string{"a"}, true},
		{`a#b`, []string{"a#b"}, true},
		{`"#x"`, []string{"#x"}, true},
		{`a\ b`, []string{"a b"}, true},
		{`'it''s'`, []string{"its"}, true},
		{`"open`, nil, false},
	}
	for _, tt := range tests {
		got, ok := argvSplit(tt.in)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("argvSplit(%q) = %q, %v", tt.in, got, ok)
		}
	}
}

func TestParseForward(t *testing.T) {
	for _, c := range []struct {
		spec string
		kind ForwardKind
		want Forward
		bad  bool
	}{
		{"8080:localhost:80", LocalForward, Forward{ListenPort: 8080, ConnectHost: "localhost", ConnectPort: 80}, false},
		{"[127.0.0.1]:8080 [localhost]:80", LocalForward, Forward{ListenHost: "127.0.0.1", HasListenHost: true, ListenPort: 8080, ConnectHost: "localhost", ConnectPort: 80}, false},
		{"8080 [::1]:80", LocalForward, Forward{ListenPort: 8080, ConnectHost: "::1", ConnectPort: 80}, false},
		{"/tmp/l.sock /tmp/c.sock", LocalForward, Forward{ListenPath: "/tmp/l.sock", ConnectPath: "/tmp/c.sock"}, false},
		{"*:1080", DynamicForward, Forward{ListenHost: "*", HasListenHost: true, ListenPort: 1080}, false},
		{"1080", DynamicForward, Forward{ListenPort: 1080}, false},
		{"0:localhost:22", RemoteForward, Forward{ListenPort: 0, ConnectHost: "localhost", ConnectPort: 22}, false},
		{"9000", RemoteForward, Forward{ListenPort: 9000}, false},
		{"9000 [socks]:0", RemoteForward, Forward{ListenPort: 9000}, false},
		{"[127.0.0.1]:0 [socks]:0", RemoteForward, Forward{ListenHost: "127.0.0.1", HasListenHost: true}, false},
		{"9000:socks:0", RemoteForward, Forward{}, true},
		{"9000 [socks]:0", LocalForward, Forward{}, true},
		{"bad", LocalForward, Forward{}, true},
		{"0:x:1", LocalForward, Forward{}, true},
		{"8080:host", LocalForward, Forward{}, true},
		{"1:2:3:4:5", LocalForward, Forward{}, true},
	} {
		got, err := ParseForward(c.spec, c.kind)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("ParseForward(%q, %d) = %+v, %v; want %+v, bad %v", c.spec, c.kind, got, err, c.want, c.bad)
		}
	}
}
