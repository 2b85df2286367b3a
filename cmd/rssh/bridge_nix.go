package main

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/agentbridge"
	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/nixbuilder"
)

// runNixMachine is `rssh --bridge --nix-machine HOST`: the Nix machines
// line for HOST as the user's ssh_config and known_hosts know it, or with
// --nix-module the nix-darwin / NixOS module that also points the daemon's
// SSH_AUTH_SOCK at the bridge socket (--listen, else the default).
func runNixMachine(a *bridgeArgs, std stdio) error {
	cfg, err := config.Resolve(config.Request{Host: a.nixMachine, ConfigFile: a.configFile})
	if err != nil {
		return err
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	m, err := nixbuilder.ForHost(cfg, nixbuilder.Options{
		Systems:           a.systems,
		MaxJobs:           a.maxJobs,
		SpeedFactor:       a.speedFactor,
		SupportedFeatures: split(a.supportedFeatures),
		MandatoryFeatures: split(a.mandatoryFeatures),
	})
	if err != nil {
		return fmt.Errorf("--nix-machine %s: %w", a.nixMachine, err)
	}
	if a.nixModule == "" {
		fmt.Fprintln(std.out, m.Line())
		if cfg.Port != 22 {
			fmt.Fprintf(std.err, "rssh: note: port %d is not in the line (Nix's ssh:// store takes no port): give the daemon NIX_SSHOPTS=\"-p %d\"\n", cfg.Port, cfg.Port)
		}
		return nil
	}
	sock := a.listen
	if sock == "" {
		if sock, err = agentbridge.DefaultListenPath(); err != nil {
			return err
		}
	}
	bridgeArgs := []string{}
	if a.listen != "" {
		bridgeArgs = append(bridgeArgs, "--listen", quote(a.listen))
	}
	hostKeys := a.allowHostKeys
	if len(hostKeys) == 0 {
		hostKeys = []string{ssh.FingerprintSHA256(m.PublicHostKey)}
	}
	for _, fp := range hostKeys {
		bridgeArgs = append(bridgeArgs, "--allow-host-key", fp)
	}
	fmt.Fprint(std.out, nixbuilder.Module(nixbuilder.Flavor(a.nixModule), m, sock, bridgeArgs))
	return nil
}
