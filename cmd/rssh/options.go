package main

import (
	"sort"
	"strings"
)

// option is one of ssh's command-line options as rssh treats it. The table
// is the single source of the usage synopsis (--help), the man page and the
// shell completions; parseArgs does the work.
type option struct {
	flag byte
	arg  string // the argument's name in the synopsis; "" for none
	desc string // the man page's text (roff-safe: no leading dot or quote)
	// refused is why rssh refuses the option, "" if it takes it.
	refused string
}

var options = []option{
	{flag: '4', desc: "Use IPv4 addresses only (AddressFamily inet)."},
	{flag: '6', desc: "Use IPv6 addresses only (AddressFamily inet6)."},
	{flag: 'A', desc: "Forward the authentication agent (ForwardAgent yes)."},
	{flag: 'a', desc: "Do not forward the authentication agent."},
	{flag: 'B', arg: "bind_interface", desc: "Bind to the address of bind_interface before connecting (BindInterface)."},
	{flag: 'b', arg: "bind_address", desc: "Use bind_address as the source address of the connection (BindAddress)."},
	{flag: 'C', desc: "Accepted as ssh takes it (Compression yes); x/crypto/ssh has no compression, so the connection is not compressed."},
	{flag: 'c', arg: "cipher_spec", desc: "The ciphers to offer, comma-separated, in order of preference (Ciphers); rssh -Q cipher lists them."},
	{flag: 'D', arg: "[bind_address:]port", desc: "Dynamic application-level port forwarding: a local SOCKS4/4a/5 server whose connections go through the server (DynamicForward)."},
	{flag: 'E', arg: "log_file", desc: "Append debug logs to log_file instead of standard error."},
	{flag: 'e', arg: "escape_char", desc: "The escape character for sessions with a pty (default ~); none disables escapes (EscapeChar)."},
	{flag: 'F', arg: "configfile", desc: "Read this configuration file instead of ~/.ssh/config; the system file is then not read."},
	{flag: 'f', desc: "Go to the background once authenticated, with the forwards up (ForkAfterAuthentication); implies -n."},
	{flag: 'G', desc: "Print the configuration that applies to the destination, as ssh -G does, and exit."},
	{flag: 'g', desc: "Allow remote hosts to connect to local forwarded ports (GatewayPorts yes)."},
	{flag: 'i', arg: "identity_file", desc: "A private key (or its .pub, when the agent holds the key) for public key authentication; repeatable (IdentityFile)."},
	{flag: 'J', arg: "destination", desc: "Connect through these jump hosts, comma-separated, each [user@]host[:port] or an ssh:// URI (ProxyJump)."},
	{flag: 'L', arg: "address", desc: "Forward a local port or socket to a host and port or socket on the remote side: [bind_address:]port:host:hostport and the socket forms (LocalForward)."},
	{flag: 'l', arg: "login_name", desc: "The user to log in as (User)."},
	{flag: 'M', desc: "Be a master for connection sharing (ControlMaster yes; twice, ask): OpenSSH's ssh -S, scp and rsync can use its connection."},
	{flag: 'm', arg: "mac_spec", desc: "The MAC algorithms to offer, comma-separated (MACs)."},
	{flag: 'N', desc: "Do not run a remote command or shell: forwarding only (SessionType none)."},
	{flag: 'n', desc: "Read standard input from /dev/null (StdinNull yes)."},
	{flag: 'O', arg: "ctl_cmd", desc: "Control a master: check, forward, cancel, exit or stop, or proxy: run the session over the master's socket in proxy mode (OpenSSH's mux protocol; rssh's or OpenSSH's master)."},
	{flag: 'o', arg: "option", desc: "Any ssh_config option, as Keyword=value or \"Keyword value\"; it wins over the configuration files."},
	{flag: 'p', arg: "port", desc: "The port to connect to (Port)."},
	{flag: 'Q', arg: "query_option", desc: "List the algorithms rssh supports for cipher, mac, kex, key, key-sig, sig and their aliases, and exit."},
	{flag: 'q', desc: "Quiet: no warnings or diagnostics (LogLevel QUIET)."},
	{flag: 'R', arg: "address", desc: "Forward a port or socket on the remote side to a local host and port or socket, or with no destination serve SOCKS there (RemoteForward)."},
	{flag: 'S', arg: "ctl_path", desc: "The control socket for connection sharing, or none (ControlPath)."},
	{flag: 's', desc: "Run the command as a subsystem of the server, such as sftp (SessionType subsystem)."},
	{flag: 'T', desc: "Do not allocate a pseudo-terminal."},
	{flag: 't', desc: "Allocate a pseudo-terminal even with a command; twice forces one with no local terminal."},
	{flag: 'V', desc: "Print the version on standard error and exit."},
	{flag: 'v', desc: "Verbose: debug messages; up to three times for more (LogLevel DEBUG1 to DEBUG3)."},
	{flag: 'W', arg: "host:port", desc: "Forward standard input and output to host:port through the server, for ProxyCommand; implies -N, -T and ExitOnForwardFailure."},
	{flag: 'x', desc: "Disable X11 forwarding (it is never on in rssh)."},
	{flag: 'I', arg: "pkcs11", refused: "PKCS#11 is not supported"},
	{flag: 'K', refused: "GSSAPI is not supported"},
	{flag: 'P', refused: "tags are not supported"},
	{flag: 'w', arg: "local_tun[:remote_tun]", refused: "tunnel forwarding is not supported"},
	{flag: 'X', refused: "X11 forwarding is not supported"},
	{flag: 'Y', refused: "X11 forwarding is not supported"},
}

// longOptions are rssh's own, which no ssh option can shadow.
var longOptions = []struct{ name, arg, desc string }{
	{"env", "NAME|none", "Send the token of environment NAME, whatever the host's SetEnv RSSH_ENV says; none sends no token."},
	{"require-env", "", "A token the server refuses is fatal, before the command runs (RsshRequireEnv yes)."},
	{"forward-secrets", "", "Keep the token on this machine: forward the agent channel and answer the host's op:// reads on it, only inside its environment's vault, with an audit line each (RsshForwardSecrets yes)."},
	{"rssh", "", "With -G, also print rssh's own settings (rsshenv, rsshrequireenv, rsshtokentransport) after ssh's lines; plain -G prints only what ssh -G prints, so its output reads back as a config."},
	{"help", "", "Print the usage on standard output and exit."},
	{"version", "", "As -V."},
}

// sshOrder sorts option letters as ssh's usage does: digits first, then by
// letter, the upper case before the lower.
func sshOrder(a, b byte) bool {
	key := func(c byte) (int, int) {
		switch {
		case c >= '0' && c <= '9':
			return int(c) - 64, 0 // before every letter
		case c >= 'A' && c <= 'Z':
			return int(c) + 32, 0
		}
		return int(c), 1
	}
	ka, ca := key(a)
	kb, cb := key(b)
	if ka != kb {
		return ka < kb
	}
	return ca < cb
}

// synopsis renders the usage block --help prints, from the option table.
func synopsis() string {
	var flags []byte
	var withArg []option
	for _, o := range options {
		switch {
		case o.refused != "":
		case o.arg == "":
			flags = append(flags, o.flag)
		default:
			withArg = append(withArg, o)
		}
	}
	sort.Slice(flags, func(i, j int) bool { return sshOrder(flags[i], flags[j]) })
	sort.SliceStable(withArg, func(i, j int) bool { return sshOrder(withArg[i].flag, withArg[j].flag) })
	const indent = "            "
	var b strings.Builder
	line := "usage: rssh [--env NAME|none] [--require-env] [--rssh]"
	b.WriteString(line)
	line = indent + "[-" + string(flags) + "]"
	for _, o := range withArg {
		item := "[-" + string(o.flag) + " " + o.arg + "]"
		if len(line)+1+len(item) > 80 {
			b.WriteString("\n" + line)
			line = indent + item
			continue
		}
		line += " " + item
	}
	b.WriteString("\n" + line)
	b.WriteString("\n" + indent + "destination [command [argument ...]]")
	for _, l := range subcommandUsage {
		b.WriteString("\n       " + l)
	}
	return b.String()
}

// subcommandUsage are the synopsis lines of rssh's own modes.
var subcommandUsage = []string{
	"rssh --token list | clear [ENV] | refresh ENV",
	"rssh --bridge [options] [HOST PORT]   (the agent bridge: rssh --bridge --help)",
	"rssh completion bash|zsh|fish",
	"rssh --help | -V | --version",
}
