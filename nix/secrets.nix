# NixOS: services.rssh-secrets.<name> gives a host's services their secrets
# from 1Password with one Service Account token (agenix-decrypted, handed
# over as a systemd credential), and no op CLI:
#
#   services.rssh-secrets.litellm = {
#     secrets.OPENAI_API_KEY = "op://SA - production/OpenAI/credential";
#     templates."config.yaml".source = ./litellm.yaml.tpl;   # {{ op://… }} inside
#     before = [ "litellm.service" ];
#     tokenCredential = config.age.secrets.op-sa-production.path;
#   };
#
# makes rssh-secrets-litellm.service (oneshot: `rssh secret fetch` into
# /run/rssh-secrets/litellm/env), rssh-secrets-litellm-templates.service
# (`rssh secret inject` into /run/rssh-secrets/litellm-templates/), and
# orders litellm.service after them with the env file as its
# EnvironmentFile. With dynamicUser = true the consumer fetches in its own
# ExecStartPre instead. The units are the ones `rssh secret systemd-unit`
# prints for the same input (a test compares them), option for flag.
self: { config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.services.rssh-secrets;

  credential = "op-service-account-token";
  documentation = "https://github.com/rssh/rssh#secrets-for-services";

  # One Exec argument as rssh's unit package writes it: double quotes, \ and
  # " escaped, systemd's % and $ doubled.
  quote = a: "\"" + builtins.replaceStrings [ "\\" "\"" "%" "$" ] [ "\\\\" "\\\"" "%%" "$$" ] a + "\"";
  command = prog: args: builtins.concatStringsSep " "
    ([ (builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] prog) ] ++ map quote args);
  isService = u: lib.hasSuffix ".service" u;
  serviceName = u: lib.removeSuffix ".service" u;

  templateType = types.submodule {
    options = {
      source = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "The template file: op inject's syntax ({{ op://… }}, bare op://…, $VAR).";
      };
      text = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "The template inline, instead of source. It holds references, not values: it may go to the store.";
      };
    };
  };

  groupType = types.submodule ({ name, ... }: {
    options = {
      secrets = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = { OPENAI_API_KEY = "op://SA - production/OpenAI/credential"; };
        description = "Variables of the env file: KEY = op:// reference.";
      };
      templates = mkOption {
        type = types.attrsOf templateType;
        default = { };
        description = "Files rendered by rssh secret inject into templateDir, by file name.";
      };
      before = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "litellm.service" ];
        description = "The units that need the secrets: they start after the fetch and require it; services among them get the env file as EnvironmentFile.";
      };
      tokenCredential = mkOption {
        type = types.str;
        example = "/run/agenix/op-sa-production";
        description = "The Service Account token file, loaded as the credential op-service-account-token (LoadCredential=).";
      };
      encrypted = mkOption {
        type = types.bool;
        default = false;
        description = "tokenCredential is a systemd-creds encrypted file (LoadCredentialEncrypted=).";
      };
      out = mkOption {
        type = types.str;
        default = "/run/rssh-secrets/${name}/env";
        description = "The env file (under /run: RAM only, removed when the unit stops).";
      };
      templateDir = mkOption {
        type = types.str;
        default = "/run/rssh-secrets/${name}-templates";
        description = "Where the rendered templates go.";
      };
      attempts = mkOption { type = types.ints.positive; default = 12; description = "rssh secret fetch --attempts."; };
      restartSec = mkOption { type = types.ints.positive; default = 5; description = "RestartSec= after a failed fetch."; };
      timeoutStartSec = mkOption { type = types.ints.positive; default = 300; description = "TimeoutStartSec= of the fetch."; };
      fileMode = mkOption { type = types.str; default = "0400"; description = "Mode of the env file and the rendered templates."; };
      owner = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "litellm:litellm";
        description = "USER[:GROUP] that gets the rendered templates (the env file is read by systemd itself).";
      };
      dynamicUser = mkOption {
        type = types.bool;
        default = false;
        description = "The consuming services run with DynamicUser=: fetch and render in their own ExecStartPre, as their user, into their RuntimeDirectory.";
      };
      package = mkOption {
        type = types.package;
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.rssh;
        defaultText = lib.literalExpression "rssh.packages.\${system}.rssh";
      };
    };
  });

  # The units of one group, as attributes of systemd.services.
  unitsOf = name: g:
    let
      rssh = lib.getExe g.package;
      runtimeDir = p: lib.removePrefix "/run/" p;
      outDir = runtimeDir (builtins.dirOf g.out);
      templateDir = runtimeDir g.templateDir;
      hasSecrets = g.secrets != { };
      hasTemplates = g.templates != { };
      loadCredential =
        if g.encrypted
        then { LoadCredentialEncrypted = [ "${credential}:${g.tokenCredential}" ]; }
        else { LoadCredential = [ "${credential}:${g.tokenCredential}" ]; };
      fetch = command rssh ([ "secret" "fetch" "--out" g.out "--attempts" (toString g.attempts) "--file-mode" g.fileMode ]
        ++ lib.mapAttrsToList (k: v: "${k}=${v}") g.secrets);
      # "${path}" copies a path literal into the store (toString would
      # keep the evaluating machine's path); a string stays as it is.
      sourceOf = file: t:
        if t.source != null then "${t.source}" else pkgs.writeText "rssh-template-${name}-${file}" t.text;
      renders = lib.mapAttrsToList
        (file: t: command rssh [ "secret" "inject" "-i" (sourceOf file t) "-o" "${g.templateDir}/${file}" "--file-mode" g.fileMode ])
        g.templates;
      chown = command "${pkgs.coreutils}/bin/chown"
        ([ g.owner g.templateDir ] ++ map (file: "${g.templateDir}/${file}") (builtins.attrNames g.templates));
      oneshot = description: runtime: {
        inherit description;
        documentation = [ documentation ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        before = g.before;
        requiredBy = g.before;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          Restart = "on-failure";
          RestartSec = g.restartSec;
          TimeoutStartSec = g.timeoutStartSec;
          RuntimeDirectory = runtime;
          RuntimeDirectoryMode = "0700";
          UMask = "0077";
          NoNewPrivileges = true;
          PrivateTmp = true;
        } // loadCredential;
      };
      fetchUnit = "rssh-secrets-${name}";
      templatesUnit = "rssh-secrets-${name}-templates";
      deps = lib.optional hasSecrets "${fetchUnit}.service" ++ lib.optional hasTemplates "${templatesUnit}.service";
      consumers = builtins.filter isService g.before;
    in
    if g.dynamicUser then
      builtins.listToAttrs (map
        (c: {
          name = serviceName c;
          value.serviceConfig = loadCredential // {
            RuntimeDirectory = [ outDir ] ++ lib.optional (hasTemplates && templateDir != outDir) templateDir;
            ExecStartPre = lib.mkBefore (lib.optional hasSecrets fetch ++ renders);
          } // lib.optionalAttrs hasSecrets { EnvironmentFile = [ "-${g.out}" ]; };
        })
        consumers)
    else
      lib.optionalAttrs hasSecrets {
        ${fetchUnit} = lib.recursiveUpdate (oneshot "rssh: the secrets of ${name} from 1Password" outDir) {
          serviceConfig.ExecStart = fetch;
        };
      }
      // lib.optionalAttrs hasTemplates {
        ${templatesUnit} = lib.recursiveUpdate (oneshot "rssh: the templates of ${name} rendered from 1Password" templateDir) {
          serviceConfig = { ExecStart = renders; } // lib.optionalAttrs (g.owner != null) { ExecStartPost = chown; };
        };
      }
      // builtins.listToAttrs (map
        (c: {
          name = serviceName c;
          value = {
            requires = deps;
            after = deps;
          } // lib.optionalAttrs hasSecrets { serviceConfig.EnvironmentFile = [ g.out ]; };
        })
        consumers);
in
{
  options.services.rssh-secrets = mkOption {
    type = types.attrsOf groupType;
    default = { };
    description = "Groups of secrets from 1Password for this host's services, fetched by rssh with a Service Account token.";
  };

  config = lib.mkIf (cfg != { }) {
    systemd.services = lib.mkMerge (lib.mapAttrsToList unitsOf cfg);
    assertions = lib.mapAttrsToList
      (name: g: {
        assertion = (g.secrets != { } || g.templates != { })
          && lib.hasPrefix "/run/" g.out && lib.hasPrefix "/run/" g.templateDir
          && builtins.all (t: (t.source == null) != (t.text == null)) (builtins.attrValues g.templates)
          && (g.dynamicUser -> (g.before != [ ] && builtins.all isService g.before));
        message = "services.rssh-secrets.${name}: give secrets or templates (each template one of source and text), keep out and templateDir under /run, and with dynamicUser name the consuming services in before";
      })
      cfg;
  };
}
