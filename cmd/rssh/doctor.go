package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/hostkeys"
	"github.com/rssh/rssh/session"
	"github.com/rssh/rssh/sshproxy"
)

// checkStatus is a doctor check's outcome.
type checkStatus string

const (
	checkPass checkStatus = "pass"
	checkFail checkStatus = "fail"
	checkSkip checkStatus = "skip"
)

// check is one link of the chain rssh needs, as doctor reports it.
type check struct {
	Name   string      `json:"name"`
	Status checkStatus `json:"status"`
	Detail string      `json:"detail"`
	Fix    string      `json:"fix,omitempty"`
}

// doctorArgs is `rssh doctor [--json] [--bridge] [--bridge-socket PATH]
// [--nix] [ssh options] [HOST]`.
type doctorArgs struct {
	json, bridge, nix bool
	bridgeSocket      string
	configFile        string      // -F, with or without a host
	inv               *invocation // nil: no host given
}

func parseDoctorArgs(args []string) (*doctorArgs, error) {
	d := &doctorArgs{}
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--json":
			d.json = true
		case "--bridge":
			d.bridge = true
		case "--nix":
			d.nix = true
		case "--bridge-socket":
			if i+1 == len(args) {
				return nil, &usageError{"--bridge-socket needs the bridge's socket path"}
			}
			i++
			d.bridge, d.bridgeSocket = true, args[i]
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return d, nil
	}
	inv, err := parseArgs(rest)
	var u *usageError
	if errors.As(err, &u) && u.msg == "no destination given" {
		// Options alone: -F still says which config the Nix checks read.
		for i, a := range rest {
			if a == "-F" && i+1 < len(rest) {
				d.configFile = rest[i+1]
			} else if f, ok := strings.CutPrefix(a, "-F"); ok && f != "" {
				d.configFile = f
			}
		}
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	d.configFile = inv.configFile
	if len(inv.command) > 0 || inv.mode != modeSession {
		return nil, &usageError{"doctor takes ssh's connection options and one HOST, no command"}
	}
	d.inv = inv
	return d, nil
}

// doctor carries what the checks need; tests replace its parts.
type doctor struct {
	getenv func(string) string
	log    *slog.Logger
	stderr io.Writer
	// opPath finds the 1Password CLI; lookPath by default.
	lookPath func(string) (string, error)
	cache    envmap.Cache
	// bridgeSocket is the bridge socket to check ("" for the default).
	bridgeSocket string
	checks       []check
}

func (d *doctor) add(name string, st checkStatus, detail, fix string) {
	d.checks = append(d.checks, check{Name: name, Status: st, Detail: detail, Fix: fix})
}

// runDoctor is `rssh doctor`: it walks the chain that fails in practice,
// one line per check, and exits 0 only when every check that applies
// passes. It never sends a token, never changes known_hosts and never
// prompts.
func runDoctor(args []string, std stdio, getenv func(string) string) int {
	a, err := parseDoctorArgs(args)
	if err != nil {
		fail(std.err, err)
		return exitFailure
	}
	d := &doctor{
		getenv:   getenv,
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		stderr:   io.Discard,
		lookPath: exec.LookPath,
	}
	d.cache = envmap.OpenCache(d.log)
	d.bridgeSocket = a.bridgeSocket
	d.run(a)
	return d.report(std.out, a.json)
}

func (d *doctor) run(a *doctorArgs) {
	var cfg *config.Config
	var plan *session.Plan
	if a.inv != nil {
		cfg, plan = d.checkConfig(a.inv)
	} else {
		d.add("config", checkSkip, "no HOST given: rssh doctor HOST checks the way to it", "")
	}
	if cfg != nil {
		cl := newClient(resolveHop(a.inv.configFile, false), d.log, d.getenv, d.stderr)
		cl.Prompt = nil // never ask: doctor runs unattended
		d.checkAgent(cl, cfg)
		known := d.checkHostKey(cfg)
		d.checkServer(cl, cfg, plan, known)
	}
	d.checkToken(plan)
	sock := d.checkBridge(a.bridge)
	d.checkNix(a.nix, sock, a.configFile)
}

func (d *doctor) checkConfig(inv *invocation) (*config.Config, *session.Plan) {
	cfg, err := config.Resolve(config.Request{Host: inv.host, Options: inv.options, ConfigFile: inv.configFile})
	if err != nil {
		d.add("config", checkFail, err.Error(), "fix the line named above; rssh -G "+inv.host+" shows the result")
		return nil, nil
	}
	file := inv.configFile
	if file == "" {
		file = "~/.ssh/config, /etc/ssh/ssh_config"
	}
	d.add("config", checkPass, fmt.Sprintf("%s: %s is %s@%s port %d; %s", file, inv.host, cfg.User, cfg.Hostname, cfg.Port, origins(cfg)), "")
	plan, err := session.PlanToken(cfg, inv.env, inv.requireEnv)
	if err != nil {
		d.add("environment", checkFail, err.Error(), "SetEnv RSSH_ENV=<env> in the host's block, with a lowercase name")
		return cfg, nil
	}
	if plan.Env == "" {
		d.add("environment", checkPass, "no RSSH_ENV for this host: no token is sent", "")
	} else {
		d.add("environment", checkPass, fmt.Sprintf("%s (from %s)", plan.Env, plan.Origin), "")
	}
	return cfg, plan
}

func (d *doctor) checkAgent(cl *sshproxy.Client, cfg *config.Config) {
	sock := cl.AgentSocket(cfg)
	if sock == "" {
		d.add("agent", checkFail, "no agent: IdentityAgent is none, or SSH_AUTH_SOCK is not set",
			"set IdentityAgent to 1Password's socket (~/.1password/agent.sock; on macOS ~/Library/Group Containers/2BUA8C4S2C.com.1password/t/agent.sock) or start ssh-agent")
		return
	}
	c, err := net.DialTimeout("unix", sock, 3*time.Second)
	if err != nil {
		d.add("agent", checkFail, fmt.Sprintf("%s does not answer: %v", sock, unwrapNet(err)),
			"start the agent (1Password: Settings > Developer > Use the SSH agent), or point IdentityAgent at the socket it serves")
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	keys, err := agent.NewClient(c).List()
	switch {
	case err != nil:
		d.add("agent", checkFail, fmt.Sprintf("%s answers but listing keys failed: %v", sock, err), "restart the agent")
	case len(keys) == 0:
		d.add("agent", checkFail, sock+" answers but holds no keys",
			"add a key (ssh-add KEY, or an SSH key item in 1Password with the agent enabled for its vault)")
	default:
		d.add("agent", checkPass, fmt.Sprintf("%s answers and holds %d key(s)", sock, len(keys)), "")
	}
}

// origins says where the values that shape the connection came from: the
// first applicable line of each keyword, or the default.
func origins(cfg *config.Config) string {
	var out []string
	for _, k := range []string{"hostname", "user", "port", "identityfile", "identityagent", "certificatefile",
		"proxyjump", "proxycommand", "userknownhostsfile", "stricthostkeychecking", "setenv", "forwardagent"} {
		if p, ok := cfg.Origins[k]; ok {
			out = append(out, k+" from "+p.String())
		} else if k == "hostname" || k == "user" || k == "port" {
			out = append(out, k+" by default")
		}
	}
	return strings.Join(out, ", ")
}

// unwrapNet drops net.OpError's "dial unix PATH:" prefix.
func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func (d *doctor) checkHostKey(cfg *config.Config) bool {
	files := append(append([]string(nil), cfg.UserKnownHostsFiles...), cfg.GlobalKnownHostsFiles...)
	db, err := hostkeys.Load(files...)
	if err != nil {
		d.add("host key", checkFail, err.Error(), "")
		return false
	}
	name := cfg.Hostname
	if cfg.HostKeyAlias != "" {
		name = cfg.HostKeyAlias
	}
	shown := name
	if cfg.Port != 22 {
		shown = fmt.Sprintf("[%s]:%d", name, cfg.Port)
	}
	// HostKeyAlgorithms answers nil exactly when no line names the host.
	if db.HostKeyAlgorithms(name, cfg.Port, []string{ssh.KeyAlgoED25519}) != nil {
		d.add("host key", checkPass, fmt.Sprintf("%s is known (%s)", shown, strings.Join(files, ", ")), "")
		return true
	}
	d.add("host key", checkFail, fmt.Sprintf("no key for %s in %s", shown, strings.Join(files, ", ")),
		fmt.Sprintf("check the server's fingerprint out of band, then connect once with rssh -o StrictHostKeyChecking=accept-new %s true", cfg.Host))
	return false
}

// checkServer connects as rssh would (but never prompting and never
// recording a host key), authenticates, and asks the server to accept
// the token's variable names with empty values: the answer is the server's
// AcceptEnv, and no token is sent.
func (d *doctor) checkServer(cl *sshproxy.Client, cfg *config.Config, plan *session.Plan, known bool) {
	if !known {
		d.add("server", checkSkip, "not connecting to a host whose key is not known", "")
		d.add("AcceptEnv", checkSkip, "needs the server check", "")
		return
	}
	probe := *cfg
	probe.StrictHostKeyChecking = "yes"
	probe.BatchMode = true
	probe.LocalForwards, probe.RemoteForwards, probe.DynamicForwards = nil, nil, nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := cl.Dial(ctx, &probe)
	if err != nil {
		fix := "rssh -v " + cfg.Host + " true shows each step"
		var h interface{ HintText() string }
		if errors.As(err, &h) && h.HintText() != "" {
			fix = h.HintText()
		} else if strings.Contains(err.Error(), "unable to authenticate") {
			fix = fmt.Sprintf("the server took none of the keys offered for %s: check ssh-add -l against the server's authorized_keys for that user, or IdentityFile", cfg.User)
		}
		d.add("server", checkFail, err.Error(), fix)
		d.add("AcceptEnv", checkSkip, "needs the server check", "")
		return
	}
	defer conn.Close()
	d.add("server", checkPass, fmt.Sprintf("%s port %d answers, its host key verified, authenticated as %s", cfg.Hostname, cfg.Port, cfg.User), "")
	if plan == nil || plan.Env == "" {
		d.add("AcceptEnv", checkSkip, "no token is sent to this host", "")
		return
	}
	names := []string{session.TokenVar, session.EnvVar}
	if plan.Transport == "lc" {
		names = []string{session.LCTokenVar, session.LCEnvVar}
	}
	s, err := conn.NewSession()
	if err != nil {
		d.add("AcceptEnv", checkFail, "opening a session: "+err.Error(), "")
		return
	}
	defer s.Close()
	var refused []string
	for _, n := range names {
		if err := s.Setenv(n, ""); err != nil {
			refused = append(refused, n)
		}
	}
	if len(refused) > 0 {
		d.add("AcceptEnv", checkFail, "the server refuses "+strings.Join(refused, " "),
			"add 'AcceptEnv "+strings.Join(names, " ")+"' to the server's sshd_config and reload sshd (or RsshTokenTransport lc for servers that accept LC_*)")
		return
	}
	d.add("AcceptEnv", checkPass, "the server accepts "+strings.Join(names, " ")+" (probed with empty values)", "")
}

// checkToken checks what fetching the token needs, without fetching it.
func (d *doctor) checkToken(plan *session.Plan) {
	if plan == nil || plan.Env == "" {
		for _, n := range []string{"op", "vault", "keychain"} {
			d.add(n, checkSkip, "no environment for this host", "")
		}
		return
	}
	if op, err := d.lookPath("op"); err != nil {
		d.add("op", checkFail, "the 1Password CLI op is not on PATH", "install it (https://developer.1password.com/docs/cli/get-started/) and sign in with op signin")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, op, "whoami")
		cmd.Env = scrubbedEnv(os.Environ())
		out, err := cmd.CombinedOutput()
		if err != nil {
			d.add("op", checkFail, fmt.Sprintf("%s is not signed in: %s", op, firstLine(string(out))),
				"sign in: op signin (or turn on the desktop app's CLI integration)")
		} else {
			d.add("op", checkPass, op+" is signed in", "")
		}
	}
	vault, err := envmap.VaultFromEnv(d.getenv)
	if err != nil {
		fix := ""
		var h interface{ HintText() string }
		if errors.As(err, &h) {
			fix = h.HintText()
		}
		d.add("vault", checkFail, err.Error(), fix)
	} else {
		d.add("vault", checkPass, fmt.Sprintf("OP_SA_CREDENTIALS_VAULT=%s: the token is %s", vault, envmap.Reference(vault, plan.Env)), "")
	}
	if !envmap.Persistent(d.cache) {
		d.add("keychain", checkFail, fmt.Sprintf("no keychain reachable: %s", d.cache),
			"unlock the login keychain (Linux: a Secret Service such as gnome-keyring on the session D-Bus); without one op runs on every connection")
		return
	}
	entries, err := d.cache.List()
	if err != nil {
		d.add("keychain", checkFail, fmt.Sprintf("%s: %v", d.cache, err), "unlock the keychain; without it op runs on every connection")
		return
	}
	var cached []string
	for _, e := range entries {
		cached = append(cached, fmt.Sprintf("%s (%s ago)", e.Env, time.Since(e.Fetched).Round(time.Minute)))
	}
	if len(cached) == 0 {
		cached = []string{"nothing cached yet"}
	}
	d.add("keychain", checkPass, fmt.Sprintf("%s: %s", d.cache, strings.Join(cached, ", ")), "")
}

// scrubbedEnv drops an inherited token, so `op whoami` reports the
// user's own sign-in.
func scrubbedEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, session.TokenVar+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// report prints the checks, one line each (✓ ✗ or - for skipped) with the
// fix under a failure, or as JSON; the status is 0 only if nothing failed.
func (d *doctor) report(w io.Writer, asJSON bool) int {
	failed := false
	for _, c := range d.checks {
		failed = failed || c.Status == checkFail
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			OK     bool    `json:"ok"`
			Checks []check `json:"checks"`
		}{!failed, d.checks})
	} else {
		for _, c := range d.checks {
			mark := map[checkStatus]string{checkPass: "✓", checkFail: "✗", checkSkip: "-"}[c.Status]
			fmt.Fprintf(w, "%s %s: %s\n", mark, c.Name, c.Detail)
			if c.Fix != "" {
				fmt.Fprintf(w, "    fix: %s\n", c.Fix)
			}
		}
	}
	if failed {
		return exitFailure
	}
	return 0
}
