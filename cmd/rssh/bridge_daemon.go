package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rssh/rssh/agentbridge"
)

// runDaemon is `rssh --bridge` with no destination: the agent bridge in the
// foreground until SIGTERM, SIGINT or SIGHUP, which end it cleanly (its
// socket removed, exit 0). Audit lines and its own messages are slog
// records on stderr, text (logfmt) by default or JSON with --log-format
// json; -v adds the Debug ones (connects, closes, unfiltered lists).
func runDaemon(a *bridgeArgs, std stdio, getenv func(string) string) error {
	level := slog.LevelInfo
	if a.verbose > 0 {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(std.err, opts)
	if a.logFormat == "json" {
		h = slog.NewJSONHandler(std.err, opts)
	}
	log := slog.New(h)
	b, err := agentbridge.New(daemonConfig(a, getenv, log))
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	if !agentbridge.Alive(b.UpstreamPath()) {
		// Not fatal: 1Password may start after the bridge; requests fail
		// until it answers and the bridge redials on each one.
		log.Warn("upstream agent does not answer yet; requests fail until it does", "upstream", b.UpstreamPath())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if err := b.Serve(ctx); err != nil {
		if errors.Is(err, agentbridge.ErrAlreadyRunning) {
			return &hintError{err, "another rssh --bridge serves this socket; stop it (launchctl bootout gui/$UID/" + launchdLabel +
				" or systemctl --user stop rssh-bridge) or give another --listen"}
		}
		if le := new(agentbridge.ListenError); errors.As(err, &le) {
			def, _ := agentbridge.DefaultListenPath()
			return &hintError{fmt.Errorf("bridge: %w", err), fmt.Sprintf(
				"give --listen a socket path whose directory exists or can be made, belongs to you and only you can write (the default is %s)", def)}
		}
		return fmt.Errorf("bridge: %w", err)
	}
	log.Info("agent bridge stopped", "listen", b.ListenPath())
	return nil
}

func daemonConfig(a *bridgeArgs, getenv func(string) string, log *slog.Logger) agentbridge.Config {
	upstream := a.upstream
	if upstream == "" {
		upstream = agentbridge.DefaultUpstream(getenv)
	}
	return agentbridge.Config{
		Listen:        a.listen,
		Upstream:      upstream,
		AllowUIDs:     a.allowUIDs,
		AllowKeys:     a.allowKeys,
		AllowHostKeys: a.allowHostKeys,
		Log:           log,
	}
}

const launchdLabel = "com.github.rssh.bridge"

// printService writes a launchd user agent (~/Library/LaunchAgents/
// com.github.rssh.bridge.plist) or a systemd user unit
// (~/.config/systemd/user/rssh-bridge.service) that runs this rssh binary
// as the bridge with the daemon flags given alongside --print-service.
func printService(a *bridgeArgs, w io.Writer, getenv func(string) string) error {
	// The flags are checked now, not when the service first fails to start.
	if _, err := agentbridge.New(daemonConfig(a, getenv, nil)); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the rssh binary: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	argv := append([]string{exe, "--bridge"}, a.daemonFlags...)
	switch a.printService {
	case "launchd":
		return printLaunchd(w, argv)
	default:
		return printSystemd(w, argv)
	}
}

func printLaunchd(w io.Writer, argv []string) error {
	home, err := os.UserHomeDir()
	if err != nil {
		return fmt.Errorf("launchd agent: %w", err)
	}
	esc := func(s string) string {
		var b strings.Builder
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var args strings.Builder
	for _, a := range argv {
		fmt.Fprintf(&args, "\t\t<string>%s</string>\n", esc(a))
	}
	_, err = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- rssh agent bridge: save as ~/Library/LaunchAgents/%[1]s.plist, then
     launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/%[1]s.plist -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>%[1]s</string>
	<key>ProgramArguments</key>
	<array>
%[2]s	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<true/>
	<key>ProcessType</key>
	<string>Background</string>
	<key>StandardErrorPath</key>
	<string>%[3]s</string>
</dict>
</plist>
`, launchdLabel, args.String(), esc(filepath.Join(home, "Library", "Logs", "rssh-bridge.log")))
	return err
}

func printSystemd(w io.Writer, argv []string) error {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = systemdQuote(a)
	}
	_, err := fmt.Fprintf(w, `# rssh agent bridge: save as ~/.config/systemd/user/rssh-bridge.service, then
#   systemctl --user daemon-reload && systemctl --user enable --now rssh-bridge
# and, for the Nix daemon to reach it while you are logged out:
#   loginctl enable-linger $USER
[Unit]
Description=rssh agent bridge: your SSH agent for allowed local users (the Nix daemon)
Documentation=https://github.com/rssh/rssh#the-agent-bridge

[Service]
ExecStart=%s
Restart=on-failure
RestartSec=2

[Install]
WantedBy=default.target
`, strings.Join(q, " "))
	return err
}

// systemdQuote quotes one ExecStart word: double quotes when it has
// whitespace, quotes or backslashes, and %% for systemd's specifiers.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;$") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "$", "$$")
	return `"` + r.Replace(s) + `"`
}
