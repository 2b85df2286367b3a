# The rssh binary. vendorHash is the hash of `go mod vendor`'s output for
# go.sum as committed; a test (nixbuilder's TestFlakeVendorHash) recomputes
# it, so it cannot go stale when a dependency changes.
# withSDK builds with -tags sdk: rssh secret then resolves through the
# 1Password SDK, so a host needs no op CLI (it costs every start ~9 MB).
{ lib, buildGoModule, withSDK ? false }:

buildGoModule rec {
  pname = if withSDK then "rssh-sdk" else "rssh";
  version = "0.5.0-dev";

  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: type: !(lib.hasSuffix ".nix" path) && baseNameOf path != "flake.lock";
  };

  vendorHash = "sha256-YAUwxtetesSXpRiIqG+0aH5fZM85QCR7EoQAQzgLhFk=";

  subPackages = [ "cmd/rssh" ];
  tags = lib.optional withSDK "sdk";
  env.CGO_ENABLED = 0;
  ldflags = [ "-s" "-w" "-X main.version=v${version}" ];

  # The tests start sshd, ssh-agent, nix-daemon and gnome-keyring and run as
  # root: they do not fit a build sandbox. scripts/test runs them.
  doCheck = false;

  meta = {
    description = "ssh drop-in that delivers 1Password Service Account tokens, with an agent bridge for the Nix daemon";
    license = lib.licenses.mit;
    mainProgram = "rssh";
    platforms = lib.platforms.unix;
  };
}
