package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchConfig is a user config of the size and shape people keep: host
// blocks with the usual keywords, a Match, an Include, a catch-all.
const benchConfig = `# work
Host bastion
  HostName bastion.example.com
  User ops
  Port 2222
  IdentityFile ~/.ssh/id_ed25519_work
  IdentitiesOnly yes
  ForwardAgent no
Host db-* !db-legacy
  ProxyJump ops@bastion:2222
  User dbadmin
  LocalForward 5432 localhost:5432
  SetEnv RSSH_ENV=prod
Host web? web??
  HostName %h.internal.example.com
  User deploy
  RemoteForward 8080 localhost:80
  DynamicForward 1080
  SendEnv LANG LC_*
Match host *.example.com user deploy
  ServerAliveInterval 30
  ServerAliveCountMax 4
  Ciphers +aes128-cbc
  KexAlgorithms -diffie-hellman-group14-sha1
Include conf.d/*
Host *
  AddKeysToAgent confirm 1h
  StrictHostKeyChecking accept-new
  UserKnownHostsFile ~/.ssh/known_hosts ~/.ssh/known_hosts.d/%k
  ControlMaster auto
  ControlPath ~/.ssh/cm-%C
  ControlPersist 10m
  ConnectTimeout 15
  TCPKeepAlive yes
  Compression no
  ForwardX11 no
  IPQoS lowdelay throughput
  RekeyLimit 1G 1h
  LogLevel INFO
  EscapeChar ~
  CertificateFile ~/.ssh/id_ed25519-cert.pub
  CanonicalDomains example.com
  SetEnv RSSH_ENV=dev
`

const benchInclude = `Host git
  HostName github.com
  User git
  RequestTTY no
  PubkeyAcceptedAlgorithms +ssh-rsa
`

// BenchmarkResolve measures one resolution as rssh does it per
// connection: "file" reads a config file with Include; "options" parses
// -o lines only (no file), where the keyword parsing is all there is.
func BenchmarkResolve(b *testing.B) {
	tmp := b.TempDir()
	if err := os.MkdirAll(filepath.Join(tmp, ".ssh", "conf.d"), 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(tmp, ".ssh", "config")
	if err := os.WriteFile(cfg, []byte(benchConfig), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".ssh", "conf.d", "git"), []byte(benchInclude), 0o644); err != nil {
		b.Fatal(err)
	}
	var opts []string
	for _, l := range strings.Split(benchConfig+benchInclude, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || strings.HasPrefix(l, "Host") || strings.HasPrefix(l, "Match") || strings.HasPrefix(l, "Include") {
			continue
		}
		opts = append(opts, l)
	}
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"file", Request{Host: "web1", ConfigFile: cfg}},
		{"options", Request{Host: "web1", Options: opts, ConfigFile: "none"}},
	} {
		bc.req.Home, bc.req.EnvHome, bc.req.LocalUser = tmp, tmp, "u"
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Resolve(bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
