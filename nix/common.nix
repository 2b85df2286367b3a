# What the NixOS and nix-darwin modules share: the options of
# services.rssh-bridge, the bridge's command line and the Nix wiring. The
# flags are rssh --bridge's own (see `rssh --bridge --help`).
self: { config, lib, pkgs, defaultSocket }:

let
  inherit (lib) mkOption mkEnableOption types;
  cfg = config.services.rssh-bridge;

  builderType = types.submodule {
    options = {
      hostName = mkOption { type = types.str; description = "The builder's host name, as the daemon's ssh dials it."; };
      port = mkOption { type = types.port; default = 22; description = "Its SSH port (Nix's ssh:// store takes none: it goes into NIX_SSHOPTS)."; };
      sshUser = mkOption { type = types.str; default = "root"; };
      systems = mkOption { type = types.listOf types.str; example = [ "x86_64-linux" ]; };
      maxJobs = mkOption { type = types.ints.positive; default = 1; };
      speedFactor = mkOption { type = types.ints.positive; default = 1; };
      supportedFeatures = mkOption { type = types.listOf types.str; default = [ ]; };
      mandatoryFeatures = mkOption { type = types.listOf types.str; default = [ ]; };
      publicHostKey = mkOption {
        type = types.str;
        description = "base64 of the builder's `type key` host key: the 8th field `rssh --bridge --nix-machine HOST` prints from your known_hosts.";
      };
    };
  };
in
{
  options.services.rssh-bridge = {
    enable = mkEnableOption "the rssh agent bridge, run as your user, exposing your SSH agent to the allowed local users (root: the Nix daemon)";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.rssh;
      defaultText = lib.literalExpression "rssh.packages.\${system}.rssh";
    };

    user = mkOption {
      type = types.str;
      description = "The user whose agent the bridge serves; the default socket path is theirs.";
    };

    socket = mkOption {
      type = types.str;
      default = defaultSocket cfg.user;
      defaultText = "the bridge's default socket for that user";
      description = "--listen: the bridge socket, and the Nix daemon's SSH_AUTH_SOCK.";
    };

    upstream = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "--upstream: the agent to forward to (default: $SSH_AUTH_SOCK, else 1Password's socket).";
    };

    allowUids = mkOption {
      type = types.listOf types.ints.unsigned;
      default = [ 0 ];
      description = "--allow-uid: who besides the user may connect (root, for the Nix daemon).";
    };

    allowKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "SHA256:…" ];
      description = "--allow-key: the only keys non-owners see and use (default: all).";
    };

    allowHostKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "--allow-host-key: non-owners may sign only to log in to servers with these host keys.";
    };

    nixBuilders = mkOption {
      type = types.listOf builderType;
      default = [ ];
      description = "Remote builders the Nix daemon uses with the user's agent through the bridge; no root ssh config is needed.";
    };
  };

  bridgeArgs = [ "--bridge" "--listen" cfg.socket ]
    ++ lib.optionals (cfg.upstream != null) [ "--upstream" cfg.upstream ]
    ++ lib.concatMap (u: [ "--allow-uid" (toString u) ]) cfg.allowUids
    ++ lib.concatMap (k: [ "--allow-key" k ]) cfg.allowKeys
    ++ lib.concatMap (k: [ "--allow-host-key" k ]) cfg.allowHostKeys;

  nixConfig = lib.mkIf (cfg.nixBuilders != [ ]) {
    distributedBuilds = true;
    buildMachines = map
      (b: {
        inherit (b) hostName sshUser systems maxJobs speedFactor supportedFeatures mandatoryFeatures publicHostKey;
      })
      cfg.nixBuilders;
    # The daemon's ssh asks the bridge, which asks the user's agent.
    envVars = {
      SSH_AUTH_SOCK = cfg.socket;
    } // (
      let ports = lib.unique (map (b: b.port) cfg.nixBuilders); in
      # Nix's ssh:// store takes no port: one non-22 port goes to every ssh builder.
      lib.optionalAttrs (ports != [ 22 ]) { NIX_SSHOPTS = "-p ${toString (lib.head ports)}"; }
    );
  };

  assertions = [{
    assertion = lib.length (lib.unique (map (b: b.port) cfg.nixBuilders)) <= 1;
    message = "services.rssh-bridge.nixBuilders: Nix's ssh:// store takes no port, so all builders must share one SSH port";
  }];
}
