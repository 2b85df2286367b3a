# Evaluates nix/secrets.nix (services.rssh-secrets) without nixpkgs, as
# eval-modules.nix does for the bridge: a stub of the lib functions it uses,
# the option defaults filled in by hand, and the systemd.services it would
# set, as JSON. cmd/rssh/secrets_nix_test.go compares them with what
# `rssh secret systemd-unit` writes for the same input.
let
  merge = a: b: a // builtins.mapAttrs
    (k: v:
      if !(a ? ${k}) then v
      else if builtins.isAttrs v && builtins.isAttrs a.${k} then merge a.${k} v
      else if builtins.isList v && builtins.isList a.${k} then a.${k} ++ v
      else v)
    b;
  lib = rec {
    mkOption = o: o;
    mkIf = cond: v: if cond then v else { };
    mkMerge = builtins.foldl' merge { };
    mkBefore = v: v;
    literalExpression = s: s;
    types = {
      str = "str"; bool = "bool"; path = "path"; package = "package";
      attrsOf = t: t;
      listOf = t: "listOf";
      nullOr = t: "nullOr";
      submodule = o: o;
      ints = { positive = "int"; };
    };
    optional = c: v: if c then [ v ] else [ ];
    optionalAttrs = c: a: if c then a else { };
    mapAttrsToList = f: a: map (k: f k a.${k}) (builtins.attrNames a);
    recursiveUpdate = merge;
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    hasSuffix = p: s:
      let n = builtins.stringLength s; m = builtins.stringLength p; in
      n >= m && builtins.substring (n - m) m s == p;
    removePrefix = p: s: if hasPrefix p s then builtins.substring (builtins.stringLength p) (-1) s else s;
    removeSuffix = p: s: if hasSuffix p s then builtins.substring 0 (builtins.stringLength s - builtins.stringLength p) s else s;
    getExe = p: "${p}/bin/rssh";
  };
  self = { packages = { }; };
  pkgs = {
    stdenv.hostPlatform.system = "x86_64-linux";
    coreutils = "/nix/store/coreutils";
    writeText = name: text: "/nix/store/0000-${name}";
  };
  # What the module system would fill in: the options' defaults.
  defaults = name: {
    secrets = { }; templates = { }; before = [ ]; encrypted = false;
    out = "/run/rssh-secrets/${name}/env";
    templateDir = "/run/rssh-secrets/${name}-templates";
    attempts = 12; restartSec = 5; timeoutStartSec = 300; fileMode = "0400";
    owner = null; dynamicUser = false; package = "/nix/store/rssh";
  };
  template = t: { source = null; text = null; } // t;
  groups = {
    litellm = {
      secrets = {
        OPENAI_API_KEY = "op://SA - production/OpenAI/credential";
        ODD = "op://SA - production/it's \"$(x)\" 100%/c\\d";
      };
      templates = {
        "config.yaml" = template { source = "/etc/litellm/config.yaml.tpl"; };
        "inline.env" = template { text = "X={{ op://SA - production/x/y }}\n"; };
      };
      before = [ "litellm.service" "multi-user.target" ];
      tokenCredential = "/run/agenix/op-sa";
      owner = "litellm:litellm";
    };
    grafana = {
      secrets.GF_SECURITY_ADMIN_PASSWORD = "op://SA - production/Grafana/password";
      before = [ "grafana.service" ];
      tokenCredential = "/etc/credstore.encrypted/op-sa";
      encrypted = true;
      dynamicUser = true;
      attempts = 3;
      out = "/run/grafana-secrets/env";
    };
    # Two groups for one consumer: both drop-ins land, merged.
    extra = {
      secrets.EXTRA = "op://SA - production/Extra/credential";
      before = [ "litellm.service" ];
      tokenCredential = "/run/agenix/op-sa";
      restartSec = 30;
      timeoutStartSec = 60;
      fileMode = "0440";
    };
  };
  config.services.rssh-secrets = builtins.mapAttrs (name: g: defaults name // g) groups;
  m = import ../../../nix/secrets.nix self { inherit config lib pkgs; };
in
{
  inherit groups;
  optionNames = builtins.attrNames (m.options.services.rssh-secrets.type { name = "x"; }).options;
  services = m.config.systemd.services;
  assertions = map (a: a.assertion) m.config.assertions;
}
