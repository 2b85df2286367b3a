package sshproxy

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
)

// minRekeyLimit is the smallest RekeyLimit size rssh uses.
const minRekeyLimit = 16 << 10

// Version is the SSH identification string rssh sends.
const Version = "SSH-2.0-rssh_0.1"

// clientConfig turns the resolved configuration into x/crypto's. Algorithm
// lists the user set in ssh_config are honoured; otherwise x/crypto's
// defaults stand: mlkem768x25519 first for key exchange and AES-GCM first
// for ciphers, which costs less CPU than OpenSSH 9.2's defaults and is no
// weaker. The returned func closes what authentication needed (the agent).
// tap, when not nil, watches the key exchange for the agent's session-bind.
// upd, when not nil, is the connection's UpdateHostKeys state.
func (cl *Client) clientConfig(cfg *config.Config, tap *kexTap, upd *hostKeyUpdate) (*ssh.ClientConfig, func(), error) {
	cb, hostAlgos, err := cl.hostKeyPolicy(cfg, upd)
	if err != nil {
		return nil, nil, err
	}
	methods, cleanup, err := cl.authMethods(cfg, tap)
	if err != nil {
		return nil, nil, err
	}
	cc := &ssh.ClientConfig{
		User: cfg.User,
		Auth: methods,
		// x/crypto asks for the host key at the end of every key
		// exchange, the first and each rekey, and sends NEWKEYS once it is
		// accepted: logged in ssh's words (OpenSSH's rekey regress test
		// counts these lines).
		HostKeyCallback: guardHostKey(func(host string, addr net.Addr, key ssh.PublicKey) error {
			if err := cb(host, addr, key); err != nil {
				return err
			}
			cl.Log.Debug("SSH2_MSG_NEWKEYS sent")
			return nil
		}),
		HostKeyAlgorithms: hostAlgos,
		ClientVersion:     Version,
		BannerCallback: guardBanner(func(msg string) error {
			if cfg.LogLevel != "QUIET" {
				fmt.Fprint(cl.Stderr, msg)
			}
			return nil
		}),
	}
	// RekeyLimit's size; x/crypto rekeys after that many bytes each way
	// (256 at least). Its time interval has no counterpart: x/crypto cannot
	// start a key exchange on a timer.
	cc.RekeyThreshold = cfg.RekeyLimit
	if cfg.RekeyLimit > 0 && cfg.RekeyLimit < minRekeyLimit {
		// A key exchange that x/crypto starts during user authentication
		// breaks it (OpenSSH answers the next auth message with
		// UNIMPLEMENTED), and authentication moves a few KiB: below this
		// floor rssh rekeys only once the session runs.
		cc.RekeyThreshold = minRekeyLimit
	}
	if cfg.RekeyInterval > 0 {
		cl.Log.Debug("RekeyLimit interval ignored: rssh rekeys by volume only", "interval", cfg.RekeyInterval)
	}
	all := ssh.SupportedAlgorithms()
	insecure := ssh.InsecureAlgorithms()
	if cfg.IsSet("kexalgorithms") {
		cc.KeyExchanges = known(cfg.KexAlgorithms, all.KeyExchanges, insecure.KeyExchanges)
	}
	if cfg.IsSet("ciphers") {
		cc.Ciphers = known(cfg.Ciphers, all.Ciphers, insecure.Ciphers)
	}
	if cfg.IsSet("macs") {
		cc.MACs = known(cfg.MACs, all.MACs, insecure.MACs)
	}
	return cc, cleanup, nil
}

// known keeps the configured algorithms x/crypto implements, in the
// configured order; OpenSSH-only names (sntrup761x25519, umac) are dropped
// rather than failing the connection. Nothing known means x/crypto's defaults.
func known(configured, supported, insecure []string) []string {
	var out []string
	for _, a := range configured {
		if slices.Contains(supported, a) || slices.Contains(insecure, a) {
			out = append(out, a)
		}
	}
	return out
}

// classifyHandshakeError turns x/crypto's messages into OpenSSH's wording
// where people know it.
func classifyHandshakeError(err error, cfg *config.Config) error {
	var hk *HostKeyError
	if errors.As(err, &hk) {
		return hk
	}
	var kc *KnownHostsCommandError
	if errors.As(err, &kc) {
		return kc
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unable to authenticate"):
		methods := "publickey"
		if i := strings.Index(msg, "attempted methods ["); i >= 0 {
			rest := msg[i+len("attempted methods ["):]
			if j := strings.Index(rest, "]"); j >= 0 {
				var m []string
				for _, f := range strings.Fields(rest[:j]) {
					if f != "none" {
						m = append(m, f)
					}
				}
				if len(m) > 0 {
					methods = strings.Join(m, ",")
				}
			}
		}
		return &AuthError{Msg: fmt.Sprintf("%s@%s: Permission denied (%s)", cfg.User, cfg.Hostname, methods)}
	case strings.Contains(msg, "ssh: disconnect, reason "):
		// The server hung up with a reason, as OpenSSH reports it.
		rest := msg[strings.Index(msg, "ssh: disconnect, reason ")+len("ssh: disconnect, reason "):]
		code, text, _ := strings.Cut(rest, ": ")
		return fmt.Errorf("received disconnect from %s port %d:%s: %s", cfg.Hostname, cfg.Port, code, strings.Trim(text, `"`))
	case strings.Contains(msg, "no common algorithm"):
		return fmt.Errorf("unable to negotiate with %s port %d: %s", cfg.Hostname, cfg.Port, strings.TrimPrefix(msg, "ssh: handshake failed: "))
	case strings.Contains(msg, "EOF"), strings.Contains(msg, "connection reset"):
		return fmt.Errorf("connection closed by %s port %d during the handshake", cfg.Hostname, cfg.Port)
	}
	return fmt.Errorf("%s port %d: %s", cfg.Hostname, cfg.Port, strings.TrimPrefix(msg, "ssh: "))
}

// AuthError is an authentication failure, worded as OpenSSH words it.
type AuthError struct{ Msg string }

func (e *AuthError) Error() string { return e.Msg }
