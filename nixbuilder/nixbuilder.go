// Package nixbuilder turns a host in the user's ssh_config into what the Nix
// daemon needs to build on it through the rssh agent bridge: the machines
// line (nix.conf `builders`) with the builder's public host key taken from
// the user's known_hosts, and the nix-darwin / NixOS settings that point the
// daemon's SSH_AUTH_SOCK at the bridge socket. Root then needs no ssh config
// and no known_hosts of its own: Nix writes the host key from the machines
// line into a temporary known_hosts for each connection.
//
// It owns the machines-line format and choosing the host key. It does not
// dial: the key is the one the user already accepted (rssh and ssh verified
// it when they recorded it), not one fetched now from the network.
package nixbuilder

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/hostkeys"
)

// Machine is one line of Nix's machines file. Its fields are in the order
// the line has them.
type Machine struct {
	URI               string // ssh://user@host
	Systems           []string
	SSHKey            string // identity file for the daemon's ssh; "" means "-": the agent
	MaxJobs           int
	SpeedFactor       int
	SupportedFeatures []string
	MandatoryFeatures []string
	PublicHostKey     ssh.PublicKey

	// Host, User and Port are the URI's parts, for the Nix modules.
	Host, User string
	Port       int
}

// Line is the machines-file line: space-separated fields, "-" for an empty
// one, and the public host key as base64 of its `type key` form (the 8th
// field, which Nix writes to a temporary known_hosts for the connection).
func (m Machine) Line() string {
	field := func(xs []string) string {
		if len(xs) == 0 {
			return "-"
		}
		return strings.Join(xs, ",")
	}
	key := m.SSHKey
	if key == "" {
		key = "-"
	}
	return strings.Join([]string{
		m.URI, field(m.Systems), key, strconv.Itoa(m.MaxJobs), strconv.Itoa(m.SpeedFactor),
		field(m.SupportedFeatures), field(m.MandatoryFeatures), EncodeHostKey(m.PublicHostKey),
	}, " ")
}

// EncodeHostKey is Nix's public-host-key field: base64 of "type base64key",
// as `base64 -w0` of a host key's .pub file without its comment.
func EncodeHostKey(k ssh.PublicKey) string {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	return base64.StdEncoding.EncodeToString([]byte(line))
}

// Options are the machine's settings that the ssh config does not give.
type Options struct {
	Systems           []string // default: x86_64-linux
	MaxJobs           int      // default: 1
	SpeedFactor       int      // default: 1
	SupportedFeatures []string
	MandatoryFeatures []string
	SSHKey            string
}

// ForHost builds the machine for a resolved ssh config: the URI from its
// User and HostName, the host key from its known_hosts files. The port is
// not in the URI (Nix 2.8's ssh:// store cannot take one): a builder on
// another port than 22 needs the daemon's NIX_SSHOPTS to say `-p PORT`, and
// the modules this package prints say so.
func ForHost(cfg *config.Config, opts Options) (Machine, error) {
	key, err := HostKey(cfg)
	if err != nil {
		return Machine{}, err
	}
	m := Machine{
		Systems:           opts.Systems,
		SSHKey:            opts.SSHKey,
		MaxJobs:           opts.MaxJobs,
		SpeedFactor:       opts.SpeedFactor,
		SupportedFeatures: opts.SupportedFeatures,
		MandatoryFeatures: opts.MandatoryFeatures,
		PublicHostKey:     key,
		Host:              cfg.Hostname,
		User:              cfg.User,
		Port:              cfg.Port,
	}
	if len(m.Systems) == 0 {
		m.Systems = []string{"x86_64-linux"}
	}
	if m.MaxJobs == 0 {
		m.MaxJobs = 1
	}
	if m.SpeedFactor == 0 {
		m.SpeedFactor = 1
	}
	host := cfg.Hostname
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	m.URI = "ssh://" + cfg.User + "@" + host
	return m, nil
}

// NoHostKeyError is a host with no usable key in known_hosts.
type NoHostKeyError struct {
	Name  string
	Files []string
}

func (e *NoHostKeyError) Error() string {
	return fmt.Sprintf("no known_hosts key for %s in %s", e.Name, strings.Join(e.Files, ", "))
}

// HintText is the fix: verify the key by connecting once.
func (e *NoHostKeyError) HintText() string {
	return "connect once with `rssh HOST true` (or ssh) and check the fingerprint it shows, so known_hosts holds the key you verified"
}

// HostKey is the builder's host key as the user's known_hosts trust it for
// cfg — the lookup rssh and OpenSSH make when they connect (HostKeyAlias,
// [host]:port, the port-less fallback), keeping only keys Check calls Known
// (so not revoked). With several, ed25519 is preferred, then ECDSA, then RSA.
func HostKey(cfg *config.Config) (ssh.PublicKey, error) {
	files := append(slices.Clone(cfg.UserKnownHostsFiles), cfg.GlobalKnownHostsFiles...)
	db, err := hostkeys.Load(files...)
	if err != nil {
		return nil, err
	}
	name, port := strings.ToLower(cfg.Hostname), cfg.Port
	shown := name
	if port != 22 {
		shown = fmt.Sprintf("[%s]:%d", name, port)
	}
	if cfg.HostKeyAlias != "" {
		name, port, shown = strings.ToLower(cfg.HostKeyAlias), 0, strings.ToLower(cfg.HostKeyAlias)
	}
	// hostkeys answers "is this key trusted?"; asking about a key no file
	// can hold lists, in Want, every line that names the host.
	_, probe, _ := ed25519.GenerateKey(nil)
	probeKey, err := ssh.NewPublicKey(probe.Public())
	if err != nil {
		return nil, err
	}
	var candidates []ssh.PublicKey
	for _, p := range []int{port, 0} {
		for _, m := range db.Check(name, p, probeKey).Want {
			if m.Marker == "" && db.Check(name, port, m.Key).Status == hostkeys.Known {
				candidates = append(candidates, m.Key)
			}
		}
		if len(candidates) > 0 || port == 0 {
			break
		}
	}
	if len(candidates) == 0 {
		return nil, &NoHostKeyError{Name: shown, Files: files}
	}
	rank := func(k ssh.PublicKey) int {
		switch t := k.Type(); {
		case t == ssh.KeyAlgoED25519:
			return 0
		case strings.HasPrefix(t, "ecdsa-"):
			return 1
		case t == ssh.KeyAlgoRSA:
			return 2
		}
		return 3
	}
	slices.SortStableFunc(candidates, func(a, b ssh.PublicKey) int { return rank(a) - rank(b) })
	return candidates[0], nil
}

// Flavor is the system whose Nix module Module prints.
type Flavor string

const (
	Darwin Flavor = "nix-darwin"
	NixOS  Flavor = "nixos"
)

// Module is a nix-darwin or NixOS module that makes m a build machine of
// the system's Nix daemon and gives the daemon SSH_AUTH_SOCK = sock, the
// bridge socket. bridgeArgs is the bridge command line to put in a comment.
func Module(f Flavor, m Machine, sock string, bridgeArgs []string) string {
	list := func(xs []string) string {
		q := make([]string, len(xs))
		for i, x := range xs {
			q[i] = nixString(x)
		}
		if len(q) == 0 {
			return "[ ]"
		}
		return "[ " + strings.Join(q, " ") + " ]"
	}
	var b strings.Builder
	service := "launchd"
	if f == NixOS {
		service = "systemd"
	}
	fmt.Fprintf(&b, "# %s: the Nix daemon (root) builds on %s with your SSH agent, through\n", f, m.Host)
	fmt.Fprintf(&b, "# the rssh agent bridge. Run the bridge as your user, e.g. as a %s service:\n", service)
	fmt.Fprintf(&b, "#   rssh --bridge --print-service %s %s\n", service, strings.Join(bridgeArgs, " "))
	b.WriteString("# Root needs no ssh config and no known_hosts: publicHostKey is the key your\n")
	b.WriteString("# known_hosts holds for the builder.\n")
	b.WriteString("{\n")
	b.WriteString("  nix.distributedBuilds = true;\n")
	b.WriteString("  nix.buildMachines = [\n    {\n")
	fmt.Fprintf(&b, "      hostName = %s;\n", nixString(m.Host))
	fmt.Fprintf(&b, "      sshUser = %s;\n", nixString(m.User))
	if m.SSHKey != "" {
		fmt.Fprintf(&b, "      sshKey = %s;\n", nixString(m.SSHKey))
	}
	fmt.Fprintf(&b, "      systems = %s;\n", list(m.Systems))
	fmt.Fprintf(&b, "      maxJobs = %d;\n", m.MaxJobs)
	fmt.Fprintf(&b, "      speedFactor = %d;\n", m.SpeedFactor)
	fmt.Fprintf(&b, "      supportedFeatures = %s;\n", list(m.SupportedFeatures))
	fmt.Fprintf(&b, "      mandatoryFeatures = %s;\n", list(m.MandatoryFeatures))
	fmt.Fprintf(&b, "      publicHostKey = %s;\n", nixString(EncodeHostKey(m.PublicHostKey)))
	b.WriteString("    }\n  ];\n")
	b.WriteString("  # The daemon's ssh asks the bridge, which asks your agent.\n")
	fmt.Fprintf(&b, "  nix.envVars.SSH_AUTH_SOCK = %s;\n", nixString(sock))
	if m.Port != 0 && m.Port != 22 {
		fmt.Fprintf(&b, "  # Port %d: Nix's ssh:// store takes no port; this applies to every ssh builder.\n", m.Port)
		fmt.Fprintf(&b, "  nix.envVars.NIX_SSHOPTS = %s;\n", nixString("-p "+strconv.Itoa(m.Port)))
	}
	b.WriteString("}\n")
	return b.String()
}

// nixString quotes s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
