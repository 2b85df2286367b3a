# NixOS: the bridge as a systemd user service of services.rssh-bridge.user
# (enable lingering for that user so it runs while they are logged out), and
# the Nix daemon's builders through it.
self: { config, lib, pkgs, ... }:

let
  cfg = config.services.rssh-bridge;
  common = import ./common.nix self {
    inherit config lib pkgs;
    defaultSocket = user: "/run/user/${toString config.users.users.${user}.uid}/rssh/bridge.sock";
  };
in
{
  inherit (common) options;

  config = lib.mkIf cfg.enable {
    inherit (common) assertions;
    systemd.user.services.rssh-bridge = {
      description = "rssh agent bridge: your SSH agent for allowed local users (the Nix daemon)";
      documentation = [ "https://github.com/rssh/rssh#the-agent-bridge" ];
      wantedBy = [ "default.target" ];
      unitConfig.ConditionUser = cfg.user;
      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} ${lib.escapeShellArgs common.bridgeArgs}";
        Restart = "on-failure";
        RestartSec = 2;
      };
    };
    users.users.${cfg.user}.linger = lib.mkDefault true;
    nix = common.nixConfig;
  };
}
