package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rssh/rssh/config"
)

// sshKeywords are the ssh_config keywords completed after -o, spelled as
// ssh_config(5) spells them (configs are case-insensitive; people are not),
// plus rssh's own. A test checks that config knows each of them.
var sshKeywords = []string{
	"AddKeysToAgent", "AddressFamily", "BatchMode", "BindAddress", "BindInterface",
	"CanonicalDomains", "CanonicalizeFallbackLocal", "CanonicalizeHostname", "CanonicalizeMaxDots",
	"CanonicalizePermittedCNAMEs", "CASignatureAlgorithms", "CertificateFile", "CheckHostIP", "Ciphers",
	"ClearAllForwardings", "Compression", "ConnectionAttempts", "ConnectTimeout", "ControlMaster",
	"ControlPath", "ControlPersist", "DynamicForward", "EnableEscapeCommandline", "EnableSSHKeysign",
	"EscapeChar", "ExitOnForwardFailure", "FingerprintHash", "ForkAfterAuthentication", "ForwardAgent",
	"ForwardX11", "ForwardX11Timeout", "ForwardX11Trusted", "GatewayPorts", "GlobalKnownHostsFile",
	"GSSAPIAuthentication", "GSSAPIDelegateCredentials", "HashKnownHosts", "HostbasedAcceptedAlgorithms",
	"HostbasedAuthentication", "HostKeyAlgorithms", "HostKeyAlias", "HostName", "IdentitiesOnly",
	"IdentityAgent", "IdentityFile", "IgnoreUnknown", "IPQoS", "KbdInteractiveAuthentication",
	"KbdInteractiveDevices", "KexAlgorithms", "KnownHostsCommand", "LocalCommand", "LocalForward",
	"LogLevel", "LogVerbose", "MACs", "NoHostAuthenticationForLocalhost", "NumberOfPasswordPrompts",
	"PasswordAuthentication", "PermitLocalCommand", "PermitRemoteOpen", "PKCS11Provider", "Port",
	"PreferredAuthentications", "ProxyCommand", "ProxyJump", "ProxyUseFdpass", "PubkeyAcceptedAlgorithms",
	"PubkeyAuthentication", "RekeyLimit", "RemoteCommand", "RemoteForward", "RequestTTY",
	"RequiredRSASize", "RevokedHostKeys", "SecurityKeyProvider", "SendEnv", "ServerAliveCountMax",
	"ServerAliveInterval", "SessionType", "SetEnv", "StdinNull", "StreamLocalBindMask",
	"StreamLocalBindUnlink", "StrictHostKeyChecking", "SyslogFacility", "TCPKeepAlive", "Tunnel",
	"TunnelDevice", "UpdateHostKeys", "User", "UserKnownHostsFile", "VerifyHostKeyDNS", "VisualHostKey",
	"XAuthLocation",
	"RsshForwardSecrets", "RsshRequireEnv", "RsshSecretConfirm", "RsshTokenTransport", "RsshTokenTTL",
}

// runCompletion is `rssh completion SHELL`: the completion script on stdout.
func runCompletion(args []string, std stdio) int {
	if len(args) != 1 {
		fail(std.err, &hintError{fmt.Errorf("completion: want one shell: bash, zsh or fish"),
			`eval "$(rssh completion bash)" in ~/.bashrc; source <(rssh completion zsh) in ~/.zshrc; rssh completion fish | source in config.fish`})
		return exitFailure
	}
	var script string
	switch args[0] {
	case "bash":
		script = bashCompletion()
	case "zsh":
		script = zshCompletion()
	case "fish":
		script = fishCompletion()
	default:
		fail(std.err, fmt.Errorf("completion: unknown shell %q: want bash, zsh or fish", args[0]))
		return exitFailure
	}
	io.WriteString(std.out, script)
	return 0
}

// runCompleteHosts is `rssh --complete-hosts [-F file]`, what the scripts
// call for a destination: the literal Host names of ssh_config (Include
// followed) and the plain names in the user's known_hosts, one a line.
func runCompleteHosts(args []string, std stdio, getenv func(string) string) int {
	file := ""
	if len(args) == 2 && args[0] == "-F" {
		file = args[1]
	}
	seen := map[string]bool{}
	w := bufio.NewWriter(std.out)
	emit := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			w.WriteString(h + "\n")
		}
	}
	for _, h := range config.HostNames(file) {
		emit(h)
	}
	if home := getenv("HOME"); home != "" {
		for _, h := range knownHostNames(filepath.Join(home, ".ssh", "known_hosts")) {
			emit(h)
		}
	}
	w.Flush()
	return 0
}

// knownHostNames reads the host names of a known_hosts file that are
// written out: not hashed, not patterns, not @cert-authority or @revoked
// lines; [host]:port gives host. Best effort, bounded.
func knownHostNames(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '@' || line[0] == '|' {
			continue
		}
		field, _, _ := strings.Cut(line, " ")
		for _, h := range strings.Split(field, ",") {
			if strings.HasPrefix(h, "[") {
				if i := strings.Index(h, "]"); i > 0 {
					h = h[1:i]
				}
			}
			if h != "" && !strings.ContainsAny(h, "*?!|") {
				out = append(out, h)
			}
		}
	}
	return out
}

// optionWords are the completion's option words: -X for each option rssh
// takes, and the long options.
func optionWords() (noArg, withArg []string) {
	for _, o := range options {
		if o.refused != "" {
			continue
		}
		if o.arg == "" {
			noArg = append(noArg, "-"+string(o.flag))
		} else {
			withArg = append(withArg, "-"+string(o.flag))
		}
	}
	for _, o := range longOptions {
		if o.arg == "" {
			noArg = append(noArg, "--"+o.name)
		} else {
			withArg = append(withArg, "--"+o.name)
		}
	}
	return noArg, withArg
}

func bashCompletion() string {
	noArg, withArg := optionWords()
	// Every option letter ssh gives an argument, taken or refused: its
	// argument must not be mistaken for the destination.
	return fmt.Sprintf(`# rssh completion for bash. Load it with
#   eval "$(rssh completion bash)"          (in ~/.bashrc)
# or save it as ~/.local/share/bash-completion/completions/rssh
_rssh() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()
    case $prev in
        -o)
            COMPREPLY=($(compgen -S = -W '%[1]s' -- "$cur"))
            compopt -o nospace 2>/dev/null
            return ;;
        -F|-i|-E)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        -Q)
            COMPREPLY=($(compgen -W 'cipher cipher-auth mac kex key key-cert key-plain key-sig sig help' -- "$cur"))
            return ;;
        --env)
            return ;;
        -[%[2]s])
            return ;;
    esac
    if [[ $COMP_CWORD -eq 1 && $cur != -* && completion == "$cur"* ]]; then
        COMPREPLY=(completion)
    fi
    if [[ $COMP_CWORD -eq 2 && ${COMP_WORDS[1]} == completion ]]; then
        COMPREPLY=($(compgen -W 'bash zsh fish' -- "$cur"))
        return
    fi
    # Options and the destination come first; after the destination the
    # words are the remote command.
    local i w config=
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
            -F) config=${COMP_WORDS[i+1]}; ((i++)) ;;
            -[%[2]s]|--env) ((i++)) ;;
            -*) ;;
            *) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        esac
    done
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '%[3]s' -- "$cur"))
        return
    fi
    local user=
    if [[ $cur == *@* ]]; then
        user=${cur%%%%@*}@
        cur=${cur#*@}
    fi
    local hosts
    hosts=$(command rssh --complete-hosts ${config:+-F "$config"} 2>/dev/null)
    COMPREPLY+=($(compgen -P "$user" -W "$hosts" -- "$cur"))
}
complete -F _rssh rssh
`, strings.Join(sshKeywords, " "), argLetterClass(), strings.Join(append(noArg, withArg...), " "))
}

func zshCompletion() string {
	var specs []string
	esc := func(s string) string {
		return strings.NewReplacer(`'`, `'\''`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
	}
	for _, o := range options {
		if o.refused != "" {
			continue
		}
		desc, _, _ := strings.Cut(o.desc, " (")
		desc = strings.TrimSuffix(desc, ".")
		action := ""
		switch o.flag {
		case 'F', 'i', 'E':
			action = ":" + o.arg + ":_files"
		case 'o':
			action = ":option:_rssh_options"
		case 'Q':
			action = ":query:(cipher cipher-auth mac kex key key-cert key-plain key-sig sig help)"
		}
		if o.arg != "" {
			if action == "" {
				action = ":" + esc(o.arg) + ": "
			}
			specs = append(specs, fmt.Sprintf("'*-%c+[%s]%s'", o.flag, esc(desc), action))
		} else {
			specs = append(specs, fmt.Sprintf("'*-%c[%s]'", o.flag, esc(desc)))
		}
	}
	for _, o := range longOptions {
		spec := fmt.Sprintf("'--%s[%s]'", o.name, esc(strings.TrimSuffix(o.desc, ".")))
		if o.arg != "" {
			spec = fmt.Sprintf("'--%s=[%s]:%s: '", o.name, esc(strings.TrimSuffix(o.desc, ".")), esc(o.arg))
		}
		specs = append(specs, spec)
	}
	return fmt.Sprintf(`#compdef rssh
# rssh completion for zsh. Load it with
#   source <(rssh completion zsh)        (in ~/.zshrc, after compinit)
# or save it as _rssh in a directory of $fpath.
_rssh_hosts() {
    local config=${opt_args[-F]}
    local -a hosts
    hosts=(${(f)"$(command rssh --complete-hosts ${config:+-F "$config"} 2>/dev/null)"})
    _wanted hosts expl host compadd -a hosts
}
_rssh_options() {
    local -a keywords
    keywords=(%[1]s)
    _wanted options expl option compadd -S = -a keywords
}
_rssh() {
    local curcontext=$curcontext state line
    typeset -A opt_args
    _arguments -C -s \
        %[2]s \
        '1:destination:_rssh_hosts' \
        '*::command:_normal'
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _rssh "$@"
else
    compdef _rssh rssh
fi
`, strings.Join(sshKeywords, " "), strings.Join(specs, " \\\n        "))
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString(`# rssh completion for fish. Load it with
#   rssh completion fish | source           (in ~/.config/fish/config.fish)
# or save it as ~/.config/fish/completions/rssh.fish
function __rssh_config
    set -l tokens (commandline -opc)
    set -l i (contains -i -- -F $tokens)
    and echo $tokens[(math $i + 1)]
end
function __rssh_hosts
    set -l config (__rssh_config)
    if test -n "$config"
        command rssh --complete-hosts -F $config 2>/dev/null
    else
        command rssh --complete-hosts 2>/dev/null
    end
end
function __rssh_needs_destination
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case '-[` + argLetterClass() + `]' --env
                set skip 1
            case '-*'
            case '*'
                return 1
        end
    end
    return 0
end
complete -c rssh -f
complete -c rssh -n __rssh_needs_destination -a '(__rssh_hosts)' -d host
complete -c rssh -n '__fish_is_first_arg' -a completion -d 'print a shell completion script'
complete -c rssh -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'
`)
	for _, o := range options {
		if o.refused != "" {
			continue
		}
		desc, _, _ := strings.Cut(o.desc, " (")
		desc = strings.ReplaceAll(strings.TrimSuffix(desc, "."), "'", `\'`)
		switch {
		case o.flag == 'o':
			fmt.Fprintf(&b, "complete -c rssh -s o -x -d '%s' -a '%s'\n", desc, strings.Join(sshKeywords, " "))
		case o.flag == 'F' || o.flag == 'i' || o.flag == 'E':
			fmt.Fprintf(&b, "complete -c rssh -s %c -r -F -d '%s'\n", o.flag, desc)
		case o.arg != "":
			fmt.Fprintf(&b, "complete -c rssh -s %c -x -d '%s'\n", o.flag, desc)
		default:
			fmt.Fprintf(&b, "complete -c rssh -s %c -d '%s'\n", o.flag, desc)
		}
	}
	for _, o := range longOptions {
		desc := strings.ReplaceAll(strings.TrimSuffix(o.desc, "."), "'", `\'`)
		if o.arg != "" {
			fmt.Fprintf(&b, "complete -c rssh -l %s -x -d '%s'\n", o.name, desc)
		} else {
			fmt.Fprintf(&b, "complete -c rssh -l %s -d '%s'\n", o.name, desc)
		}
	}
	return b.String()
}

// argLetterClass is the option letters that take an argument, as a glob
// bracket class.
func argLetterClass() string {
	var b strings.Builder
	for i := 0; i+1 < len(optstring); i++ {
		if optstring[i+1] == ':' {
			b.WriteByte(optstring[i])
		}
	}
	return b.String()
}
