package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/agentbridge"
	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/hostkeys"
)

// checkBridge checks the agent bridge when its socket exists or --bridge
// asks: the socket, the process behind it and its allow-list, and keys
// through it (which needs its upstream agent).
func (d *doctor) checkBridge(force bool) string {
	sock := d.bridgeSocket
	if sock == "" {
		sock, _ = agentbridge.DefaultListenPath()
	}
	fi, err := os.Lstat(sock)
	if err != nil && !force {
		d.add("bridge", checkSkip, fmt.Sprintf("no bridge socket at %s (--bridge checks it anyway)", sock), "")
		return ""
	}
	fix := "start it: rssh --bridge (or as a service: rssh --bridge --print-service launchd|systemd)"
	if err != nil {
		d.add("bridge", checkFail, fmt.Sprintf("no bridge socket at %s", sock), fix)
		return sock
	}
	if fi.Mode()&os.ModeSocket == 0 {
		d.add("bridge", checkFail, sock+" is not a socket", "remove it and start the bridge")
		return sock
	}
	c, err := net.DialTimeout("unix", sock, 3*time.Second)
	if err != nil {
		d.add("bridge", checkFail, fmt.Sprintf("%s (mode %v) does not answer: %v", sock, fi.Mode().Perm(), unwrapNet(err)), fix)
		return sock
	}
	defer c.Close()
	who := "allowed uids: unknown (" + "the bridge process could not be read" + ")"
	if pid, err := agentbridge.PeerPID(c.(*net.UnixConn)); err == nil && pid > 0 {
		if argv, err := processArgs(pid); err == nil {
			if i := slices.Index(argv, "--bridge"); i >= 0 {
				if a, err := parseBridgeArgs(argv[i+1:]); err == nil {
					uids := "0 (the default)"
					if a.allowUIDs != nil {
						var s []string
						for _, u := range a.allowUIDs {
							s = append(s, strconv.Itoa(int(u)))
						}
						uids = strings.Join(s, ",")
						if len(s) == 0 {
							uids = "none (only its owner)"
						}
					}
					who = fmt.Sprintf("pid %d, allowed uids: %s", pid, uids)
				}
			}
		}
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	keys, err := agent.NewClient(c).List()
	if err != nil || len(keys) == 0 {
		why := "it lists no keys"
		if err != nil {
			why = "listing keys through it failed: " + err.Error()
		}
		d.add("bridge", checkFail, fmt.Sprintf("%s (mode %v, %s) answers, but %s: its upstream agent is down or empty", sock, fi.Mode().Perm(), who, why),
			"start or unlock the agent the bridge forwards to (--upstream; default $SSH_AUTH_SOCK, else 1Password's)")
		return sock
	}
	d.add("bridge", checkPass, fmt.Sprintf("%s (mode %v, %s) answers with %d key(s) from its upstream", sock, fi.Mode().Perm(), who, len(keys)), "")
	return sock
}

// nixConfig is what `nix show-config --json` says of the settings doctor
// reads.
type nixConfig struct {
	Builders     string
	TrustedUsers []string
}

func (d *doctor) readNixConfig() (*nixConfig, error) {
	nix, err := d.lookPath("nix")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, nix, "--extra-experimental-features", "nix-command", "show-config", "--json").Output()
	if err != nil {
		return nil, fmt.Errorf("nix show-config: %w", err)
	}
	var raw map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("nix show-config: %w", err)
	}
	c := &nixConfig{}
	json.Unmarshal(raw["builders"].Value, &c.Builders)
	json.Unmarshal(raw["trusted-users"].Value, &c.TrustedUsers)
	return c, nil
}

// nixMachine is one line of Nix's machines list.
type nixMachine struct {
	uri, host, user string
	hostKey         string // base64 of "type key", or ""
}

// machines parses the builders setting (inline lines separated by ';' or
// newlines, or @FILE) as Nix 2.8 does, far enough for the host and the
// public host key.
func parseMachines(builders string) ([]nixMachine, error) {
	text := builders
	if strings.HasPrefix(strings.TrimSpace(builders), "@") {
		b, err := os.ReadFile(strings.TrimPrefix(strings.TrimSpace(builders), "@"))
		if os.IsNotExist(err) {
			return nil, nil // Nix's default, @/etc/nix/machines, need not exist
		}
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	var out []nixMachine
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(text, ";", "\n")))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := nixMachine{uri: f[0]}
		rest := strings.TrimPrefix(strings.TrimPrefix(f[0], "ssh-ng://"), "ssh://")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			m.user, rest = rest[:at], rest[at+1:]
		}
		m.host = rest
		if len(f) >= 8 && f[7] != "-" {
			m.hostKey = f[7]
		}
		out = append(out, m)
	}
	return out, nil
}

// checkNix checks the Nix side when Nix has builders or --nix asks: the
// builders, trusted-users, the daemon's SSH_AUTH_SOCK (the bridge) and each
// builder's host key against the user's known_hosts.
func (d *doctor) checkNix(force bool, bridgeSock string, configFile string) {
	nc, err := d.readNixConfig()
	if err != nil {
		if force {
			d.add("nix", checkFail, "reading Nix's settings: "+err.Error(), "install Nix, or leave out --nix")
		} else {
			d.add("nix", checkSkip, "Nix is not installed or not readable (--nix checks it anyway)", "")
		}
		return
	}
	machines, err := parseMachines(nc.Builders)
	if err != nil {
		d.add("nix builders", checkFail, fmt.Sprintf("builders = %s: %v", nc.Builders, err), "point builders at a readable machines file")
		return
	}
	if len(machines) == 0 {
		if force {
			d.add("nix builders", checkFail, "Nix has no builders configured",
				"add builders: rssh --bridge --nix-machine HOST prints the machines line (or the module with --nix-module)")
		} else {
			d.add("nix", checkSkip, "Nix has no builders (--nix checks it anyway)", "")
		}
		return
	}
	var hosts []string
	for _, m := range machines {
		hosts = append(hosts, m.uri)
	}
	d.add("nix builders", checkPass, strings.Join(hosts, ", "), "")

	u, _ := user.Current()
	trusted := u != nil && (u.Uid == "0" || slices.Contains(nc.TrustedUsers, u.Username))
	if trusted {
		d.add("nix trusted-users", checkPass, "you are a trusted user of the daemon", "")
	} else {
		d.add("nix trusted-users", checkSkip, "you are not in trusted-users: the daemon's own builders apply, builders you pass are ignored", "")
	}
	port := d.checkNixDaemon(bridgeSock)
	for _, m := range machines {
		d.checkBuilderKey(m, configFile, port)
	}
}

// checkNixDaemon reads the running daemon's environment: its ssh must ask
// the bridge. The daemon is found through its socket: the kernel names the
// process that listens on it. It returns the port the daemon's NIX_SSHOPTS
// gives its ssh (Nix's ssh:// store takes none), or 0.
func (d *doctor) checkNixDaemon(bridgeSock string) (port int) {
	sock := d.getenv("NIX_DAEMON_SOCKET_PATH")
	if sock == "" {
		sock = "/nix/var/nix/daemon-socket/socket"
	}
	c, err := net.DialTimeout("unix", sock, 3*time.Second)
	if err != nil {
		d.add("nix daemon", checkFail, fmt.Sprintf("no daemon answers on %s: %v", sock, unwrapNet(err)), "start the Nix daemon")
		return
	}
	defer c.Close()
	pid, err := agentbridge.PeerPID(c.(*net.UnixConn))
	if err != nil || pid == 0 {
		d.add("nix daemon", checkSkip, "the daemon's process is not known here", "")
		return
	}
	env, err := processEnv(pid)
	if err != nil {
		d.add("nix daemon", checkSkip, fmt.Sprintf("cannot read the daemon's environment (pid %d): %v; run doctor as root to check it", pid, err), "")
		return
	}
	got := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SSH_AUTH_SOCK="); ok {
			got = v
		}
		if v, ok := strings.CutPrefix(kv, "NIX_SSHOPTS="); ok {
			port = sshoptsPort(v)
		}
	}
	want := bridgeSock
	if want == "" {
		want, _ = agentbridge.DefaultListenPath()
	}
	if got == "" || filepath.Clean(got) != filepath.Clean(want) {
		shown := got
		if shown == "" {
			shown = "not set"
		}
		d.add("nix daemon", checkFail, fmt.Sprintf("the daemon (pid %d) has SSH_AUTH_SOCK %s, not the bridge's %s", pid, shown, want),
			fmt.Sprintf("set nix.envVars.SSH_AUTH_SOCK = %q (rssh --bridge --nix-machine HOST --nix-module nix-darwin|nixos prints the module) and restart the daemon", want))
		return port
	}
	d.add("nix daemon", checkPass, fmt.Sprintf("the daemon (pid %d) signs through the bridge (SSH_AUTH_SOCK=%s)", pid, got), "")
	return port
}

// sshoptsPort finds -p PORT, -pPORT or -o Port=PORT in NIX_SSHOPTS.
func sshoptsPort(opts string) int {
	f := strings.Fields(opts)
	for i, w := range f {
		v := ""
		switch {
		case w == "-p" && i+1 < len(f):
			v = f[i+1]
		case strings.HasPrefix(w, "-p"):
			v = w[2:]
		case strings.HasPrefix(strings.ToLower(w), "-oport="):
			v = w[len("-oport="):]
		case w == "-o" && i+1 < len(f) && strings.HasPrefix(strings.ToLower(f[i+1]), "port="):
			v = f[i+1][len("port="):]
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65536 {
			return n
		}
	}
	return 0
}

// checkBuilderKey holds a machines line's public host key to the key the
// user's known_hosts has for that builder (what --nix-machine copies).
func (d *doctor) checkBuilderKey(m nixMachine, configFile string, port int) {
	name := "nix " + m.host
	if m.hostKey == "" {
		d.add(name, checkFail, "the machines line has no public host key: root's ssh has no known_hosts to check it against",
			"regenerate the line with rssh --bridge --nix-machine "+m.host)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(m.hostKey)
	var key ssh.PublicKey
	if err == nil {
		key, _, _, _, err = ssh.ParseAuthorizedKey(raw)
	}
	if err != nil {
		d.add(name, checkFail, "the machines line's host key does not parse: "+err.Error(), "regenerate the line with rssh --bridge --nix-machine "+m.host)
		return
	}
	var opts []string
	if port != 0 {
		opts = []string{"Port " + strconv.Itoa(port)}
	}
	cfg, err := config.Resolve(config.Request{Host: m.host, ConfigFile: configFile, Options: opts})
	if err != nil {
		d.add(name, checkFail, err.Error(), "")
		return
	}
	db, err := hostkeys.Load(append(append([]string(nil), cfg.UserKnownHostsFiles...), cfg.GlobalKnownHostsFiles...)...)
	if err != nil {
		d.add(name, checkFail, err.Error(), "")
		return
	}
	kname := cfg.Hostname
	if cfg.HostKeyAlias != "" {
		kname = cfg.HostKeyAlias
	}
	switch res := db.Check(kname, cfg.Port, key); res.Status {
	case hostkeys.Known:
		d.add(name, checkPass, "the machines line's host key is the one your known_hosts has", "")
	case hostkeys.Unknown:
		d.add(name, checkFail, "your known_hosts has no key for "+m.host+" to compare the machines line's with",
			"connect once with rssh "+m.host+" true, checking the fingerprint, then regenerate the line with rssh --bridge --nix-machine "+m.host)
	default:
		d.add(name, checkFail, "the machines line's host key is not the one your known_hosts has for "+m.host,
			"regenerate the line with rssh --bridge --nix-machine "+m.host)
	}
}
