package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// The flake's Nix files parse (nixpkgs cannot be fetched here, so nothing
// builds them; nix-instantiate --parse is the check the issue asks for).
func TestNixFilesParse(t *testing.T) {
	nixInst := testenv.Need(t, "nix-instantiate", "nix-bin")
	files, _ := filepath.Glob("../../nix/*.nix")
	files = append(files, "../../flake.nix", "testdata/eval-modules.nix")
	for _, f := range files {
		if out, err := exec.Command(nixInst, "--parse", f).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v\n%s", f, err, out)
		}
	}
}

// The NixOS and nix-darwin modules, evaluated against a stub lib, run the
// bridge with flags rssh --bridge accepts and wire the Nix daemon as
// --nix-module documents: the builder, SSH_AUTH_SOCK at the bridge socket,
// and NIX_SSHOPTS for a non-22 port.
func TestNixModules(t *testing.T) {
	nixInst := testenv.Need(t, "nix-instantiate", "nix-bin")
	out, err := exec.Command(nixInst, "--eval", "--strict", "--json", "testdata/eval-modules.nix").Output()
	if err != nil {
		t.Fatalf("evaluating the modules: %v", err)
	}
	type nixConf struct {
		DistributedBuilds bool `json:"distributedBuilds"`
		BuildMachines     []struct {
			HostName      string `json:"hostName"`
			PublicHostKey string `json:"publicHostKey"`
		} `json:"buildMachines"`
		EnvVars map[string]string `json:"envVars"`
	}
	var got struct {
		NixOS struct {
			Config struct {
				Systemd struct {
					User struct {
						Services map[string]struct {
							ServiceConfig struct{ ExecStart string } `json:"serviceConfig"`
						} `json:"services"`
					} `json:"user"`
				} `json:"systemd"`
				Nix nixConf `json:"nix"`
			} `json:"config"`
		} `json:"nixos"`
		Darwin struct {
			Config struct {
				Launchd struct {
					User struct {
						Agents map[string]struct {
							ServiceConfig struct {
								Label            string
								ProgramArguments []string
							} `json:"serviceConfig"`
						} `json:"agents"`
					} `json:"user"`
				} `json:"launchd"`
				Nix nixConf `json:"nix"`
			} `json:"config"`
		} `json:"darwin"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	check := func(name string, argv []string, sock string, n nixConf) {
		t.Helper()
		if len(argv) < 2 || argv[1] != "--bridge" {
			t.Fatalf("%s: the service runs %q, not rssh --bridge", name, argv)
		}
		a, err := parseBridgeArgs(argv[2:])
		if err != nil {
			t.Fatalf("%s: rssh refuses the module's flags %q: %v", name, argv[2:], err)
		}
		if a.listen != sock || !slices.Equal(a.allowKeys, []string{"SHA256:key"}) || !slices.Equal(a.allowHostKeys, []string{"SHA256:host"}) ||
			len(a.allowUIDs) != 1 || a.allowUIDs[0] != 0 || a.upstream == "" {
			t.Errorf("%s: the bridge runs with %+v", name, a)
		}
		if !n.DistributedBuilds || len(n.BuildMachines) != 1 || n.BuildMachines[0].HostName != "builder.example" ||
			n.BuildMachines[0].PublicHostKey == "" || n.EnvVars["SSH_AUTH_SOCK"] != sock || n.EnvVars["NIX_SSHOPTS"] != "-p 2222" {
			t.Errorf("%s: the Nix daemon is wired as %+v", name, n)
		}
	}
	nixos := got.NixOS.Config
	execStart := nixos.Systemd.User.Services["rssh-bridge"].ServiceConfig.ExecStart
	var argv []string
	for _, w := range strings.Fields(execStart) {
		argv = append(argv, strings.Trim(w, "'"))
	}
	check("nixos", argv, "/run/user/1000/rssh/bridge.sock", nixos.Nix)
	darwin := got.Darwin.Config
	agent := darwin.Launchd.User.Agents["rssh-bridge"].ServiceConfig
	if agent.Label != launchdLabel {
		t.Errorf("darwin: launchd label %q, want %q as --print-service launchd", agent.Label, launchdLabel)
	}
	check("darwin", agent.ProgramArguments, "/Users/alice/Library/Application Support/rssh/bridge.sock", darwin.Nix)
}

// The flake's vendorHash is the NAR hash of `go mod vendor` for go.sum as it
// stands, so a changed dependency cannot leave the package unbuildable.
func TestFlakeVendorHash(t *testing.T) {
	nix := testenv.Need(t, "nix", "nix-bin")
	pkg, err := os.ReadFile("../../nix/package.nix")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`vendorHash = "(sha256-[^"]+)"`).FindSubmatch(pkg)
	if m == nil {
		t.Fatal("nix/package.nix pins no vendorHash")
	}
	vendor := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", vendor)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	out, err := exec.Command(nix, "--extra-experimental-features", "nix-command", "hash", "path", "--sri", vendor).Output()
	if err != nil {
		t.Fatalf("nix hash path: %v", err)
	}
	if want := strings.TrimSpace(string(out)); want != string(m[1]) {
		t.Errorf("nix/package.nix has vendorHash %s, but go.sum now vendors to %s: update it", m[1], want)
	}
}
