# nix-darwin: the bridge as a launchd user agent, and the Nix daemon's
# builders through it.
self: { config, lib, pkgs, ... }:

let
  cfg = config.services.rssh-bridge;
  common = import ./common.nix self {
    inherit config lib pkgs;
    defaultSocket = user: "/Users/${user}/Library/Application Support/rssh/bridge.sock";
  };
in
{
  inherit (common) options;

  config = lib.mkIf cfg.enable {
    inherit (common) assertions;
    launchd.user.agents.rssh-bridge.serviceConfig = {
      Label = "com.github.rssh.bridge";
      ProgramArguments = [ (lib.getExe cfg.package) ] ++ common.bridgeArgs;
      RunAtLoad = true;
      KeepAlive = true;
      ProcessType = "Background";
      StandardErrorPath = "/Users/${cfg.user}/Library/Logs/rssh-bridge.log";
    };
    nix = common.nixConfig;
  };
}
