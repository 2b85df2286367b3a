# Evaluates the flake's modules (nix/nixos.nix, nix/darwin.nix) without
# nixpkgs, which cannot be fetched here: a stub of the few lib functions they
# use, a config with the module's options set, and the attributes the module
# would set, as JSON. cmd/rssh/flake_test.go compares them with what rssh expects.
let
  lib = rec {
    mkOption = o: o;
    mkEnableOption = d: { description = d; };
    mkDefault = v: v;
    mkIf = cond: v: if cond then v else { };
    literalExpression = s: s;
    types = rec {
      str = "str"; port = "port"; package = "package";
      listOf = t: "listOf";
      nullOr = t: "nullOr";
      submodule = o: "submodule";
      ints = { positive = "int"; unsigned = "int"; };
    };
    optionals = c: l: if c then l else [ ];
    optionalAttrs = c: a: if c then a else { };
    concatMap = f: l: builtins.concatLists (map f l);
    unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
    length = builtins.length;
    head = builtins.head;
    getExe = p: "${p}/bin/rssh";
    escapeShellArgs = l: builtins.concatStringsSep " " (map (a: "'${a}'") l);
  };
  self = { packages = { }; };
  pkgs = { stdenv.hostPlatform.system = "x86_64-linux"; };
  settings = {
    enable = true;
    user = "alice";
    package = "/nix/store/rssh";
    upstream = "/home/alice/.1password/agent.sock";
    allowUids = [ 0 ];
    allowKeys = [ "SHA256:key" ];
    allowHostKeys = [ "SHA256:host" ];
    nixBuilders = [{
      hostName = "builder.example"; port = 2222; sshUser = "root"; systems = [ "x86_64-linux" ];
      maxJobs = 8; speedFactor = 1; supportedFeatures = [ ]; mandatoryFeatures = [ ];
      publicHostKey = "c3NoLWVkMjU1MTk=";
    }];
  };
  eval = file: socket:
    let
      config = {
        services.rssh-bridge = settings // { inherit socket; };
        users.users.alice.uid = 1000;
      };
      m = import file self { inherit config lib pkgs; };
    in
    {
      optionNames = builtins.attrNames m.options.services.rssh-bridge;
      inherit (m) config;
    };
in
{
  nixos = eval ../../../nix/nixos.nix "/run/user/1000/rssh/bridge.sock";
  darwin = eval ../../../nix/darwin.nix "/Users/alice/Library/Application Support/rssh/bridge.sock";
}
