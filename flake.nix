{
  description = "rssh: ssh for people who keep their SSH keys and credentials in 1Password";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # go.mod says go 1.26: use that toolchain where nixpkgs has it by name.
      rsshFor = pkgs: rsshWith pkgs false;
      rsshWith = pkgs: withSDK: pkgs.callPackage ./nix/package.nix {
        buildGoModule = pkgs.buildGo126Module or pkgs.buildGoModule;
        inherit withSDK;
      };
    in
    {
      packages = forAllSystems (pkgs: rec {
        rssh = rsshFor pkgs;
        # For hosts: rssh secret through the 1Password SDK, no op CLI needed.
        rssh-sdk = rsshWith pkgs true;
        default = rssh;
      });

      overlays.default = final: prev: { rssh = rsshFor final; };

      # services.rssh-bridge: the agent bridge as your user's service, and the
      # Nix daemon building on remote builders through it.
      # services.rssh-secrets: a host's services get their secrets from
      # 1Password at start (rssh secret fetch / inject in oneshot units).
      nixosModules.rssh-bridge = import ./nix/nixos.nix self;
      nixosModules.rssh-secrets = import ./nix/secrets.nix self;
      nixosModules.default = { imports = [ self.nixosModules.rssh-bridge self.nixosModules.rssh-secrets ]; };
      darwinModules.default = import ./nix/darwin.nix self;
    };
}
