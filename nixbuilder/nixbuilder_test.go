package nixbuilder

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/testenv"
)

func ecKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func line(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }

// resolve writes an ssh_config and known_hosts and resolves host with them.
func resolve(t *testing.T, block, knownHosts, host string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(knownHosts), 0o600)
	cf := filepath.Join(dir, "ssh_config")
	os.WriteFile(cf, []byte(block+"\tUserKnownHostsFile "+kh+"\n\tGlobalKnownHostsFile /dev/null\n"), 0o600)
	cfg, err := config.Resolve(config.Request{Host: host, ConfigFile: cf})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The public-host-key field is what TESTING.md's recipe makes with
// `base64 -w0` of a .pub file's "type key", and Nix decodes.
func TestLineFormat(t *testing.T) {
	k := testenv.NewPublicKey(t)
	m := Machine{URI: "ssh://root@b", Systems: []string{"x86_64-linux", "aarch64-linux"}, MaxJobs: 4, SpeedFactor: 2,
		SupportedFeatures: []string{"kvm", "big-parallel"}, PublicHostKey: k}
	want := "ssh://root@b x86_64-linux,aarch64-linux - 4 2 kvm,big-parallel - " + base64.StdEncoding.EncodeToString([]byte(line(k)))
	if got := m.Line(); got != want {
		t.Fatalf("Line() =\n%s\nwant\n%s", got, want)
	}
	if f := strings.Fields(m.Line()); len(f) != 8 {
		t.Fatalf("%d fields, want 8", len(f))
	}
}

func TestHostKeyLookup(t *testing.T) {
	ed, ec, other := testenv.NewPublicKey(t), ecKey(t), testenv.NewPublicKey(t)
	block := "Host b\n\tHostName 10.0.0.5\n\tUser root\n"
	cases := []struct {
		name, block, kh string
		want            ssh.PublicKey // nil: NoHostKeyError
	}{
		{"port 22, ed25519 preferred over ecdsa", block, fmt.Sprintf("10.0.0.5 %s\n10.0.0.5 %s\n", line(ec), line(ed)), ed},
		{"other port under [host]:port", block + "\tPort 2222\n", fmt.Sprintf("10.0.0.5 %s\n[10.0.0.5]:2222 %s\n", line(other), line(ed)), ed},
		{"other port, port-less fallback", block + "\tPort 2222\n", fmt.Sprintf("10.0.0.5 %s\n", line(ec)), ec},
		{"HostKeyAlias", block + "\tHostKeyAlias builder\n", fmt.Sprintf("10.0.0.5 %s\nbuilder %s\n", line(other), line(ed)), ed},
		{"revoked key skipped", block, fmt.Sprintf("10.0.0.5 %s\n10.0.0.5 %s\n@revoked * %s\n", line(ec), line(ed), line(ed)), ec},
		{"CA line is no host key", block, fmt.Sprintf("@cert-authority 10.0.0.5 %s\n", line(ed)), nil},
		{"another host's key", block, fmt.Sprintf("10.0.0.6 %s\n", line(ed)), nil},
		{"nothing", block, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := resolve(t, c.block, c.kh, "b")
			k, err := HostKey(cfg)
			if c.want == nil {
				var nk *NoHostKeyError
				if !errors.As(err, &nk) || nk.HintText() == "" {
					t.Fatalf("want NoHostKeyError, got %v, %v", k, err)
				}
				return
			}
			if err != nil || line(k) != line(c.want) {
				t.Fatalf("got %v, %v; want %s", k, err, line(c.want))
			}
		})
	}
}

// A hashed known_hosts entry (HashKnownHosts yes, Debian's default) is
// found like a plain one.
func TestHostKeyHashed(t *testing.T) {
	testenv.Need(t, "ssh-keygen", "openssh-client")
	ed := testenv.NewPublicKey(t)
	cfg := resolve(t, "Host b\n\tHostName 10.0.0.5\n", fmt.Sprintf("10.0.0.5 %s\n", line(ed)), "b")
	if out, err := exec.Command("ssh-keygen", "-H", "-f", cfg.UserKnownHostsFiles[0]).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(cfg.UserKnownHostsFiles[0]); !strings.HasPrefix(string(b), "|1|") {
		t.Fatalf("not hashed: %s", b)
	}
	if k, err := HostKey(cfg); err != nil || line(k) != line(ed) {
		t.Fatalf("got %v, %v", k, err)
	}
}

// The modules are valid Nix (nix-instantiate --parse) and carry the host
// key, the bridge socket and, for another port, NIX_SSHOPTS.
func TestModuleParses(t *testing.T) {
	inst := testenv.Need(t, "nix-instantiate", "nix-bin")
	k := testenv.NewPublicKey(t)
	cfg := resolve(t, "Host b\n\tHostName 10.0.0.5\n\tUser nix\n\tPort 2222\n", fmt.Sprintf("[10.0.0.5]:2222 %s\n", line(k)), "b")
	m, err := ForHost(cfg, Options{MaxJobs: 8, SupportedFeatures: []string{"kvm"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.URI != "ssh://nix@10.0.0.5" || m.Systems[0] != "x86_64-linux" || m.SpeedFactor != 1 {
		t.Fatalf("machine %+v", m)
	}
	sock := `/Users/me/Library/Application Support/rssh/bridge.sock`
	for _, f := range []Flavor{Darwin, NixOS} {
		mod := Module(f, m, sock, []string{"--allow-host-key", ssh.FingerprintSHA256(k)})
		out, err := exec.Command(inst, "--parse", "-E", mod).CombinedOutput()
		if err != nil {
			t.Fatalf("%s module does not parse: %v\n%s\n%s", f, err, out, mod)
		}
		for _, want := range []string{
			`nix.envVars.SSH_AUTH_SOCK = "` + sock + `";`,
			`publicHostKey = "` + EncodeHostKey(k) + `";`,
			`nix.envVars.NIX_SSHOPTS = "-p 2222";`,
			`sshUser = "nix";`, `hostName = "10.0.0.5";`, `maxJobs = 8;`, `supportedFeatures = [ "kvm" ];`,
		} {
			if !strings.Contains(mod, want) {
				t.Errorf("%s module lacks %q:\n%s", f, want, mod)
			}
		}
	}
	if got := nixString("a\"b${c}\\"); got != `"a\"b\${c}\\"` {
		t.Errorf("nixString = %s", got)
	}
}
