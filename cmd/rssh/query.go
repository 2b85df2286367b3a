package main

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/sshproxy"
)

// queries are the names -Q answers, as `ssh -Q help` lists them, each with
// the algorithms rssh uses when they are asked for. Ciphers, MACs and key
// exchanges include x/crypto's weak ones, which rssh accepts when a config
// names them (ssh -Q lists 3des-cbc too), and leave out what OpenSSH 9.2's
// config does not accept (arcfour*, mlkem768x25519-sha256, which rssh
// still offers by default); key and signature algorithms are
// the ones x/crypto verifies and signs with by default, the only ones rssh
// offers. Config keyword names work as well, as in ssh (-Q Ciphers).
var queries = []string{"cipher", "cipher-auth", "compression", "kex", "kex-gss", "key",
	"key-cert", "key-plain", "key-sig", "mac", "protocol-version", "sig"}

// query returns the answer to ssh -Q name.
func query(name string) ([]string, error) {
	supported, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	join := func(a, b []string) []string {
		out := slices.Clone(a)
		for _, x := range b {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
		return out
	}
	keySig := join(supported.HostKeys, supported.PublicKeyAuths)
	isCert := func(a string) bool { return strings.HasSuffix(a, "-cert-v01@openssh.com") }
	// Signature algorithms that are not key types of their own.
	sigOnly := func(a string) bool {
		return strings.HasPrefix(a, "rsa-sha2-") || strings.HasPrefix(a, "webauthn-")
	}
	// The key types: an RSA key is "ssh-rsa" whichever rsa-sha2-* it signs
	// with.
	var keys []string
	for _, a := range keySig {
		switch {
		case strings.HasPrefix(a, "rsa-sha2-") && isCert(a):
			a = "ssh-rsa-cert-v01@openssh.com"
		case strings.HasPrefix(a, "rsa-sha2-"):
			a = "ssh-rsa"
		case sigOnly(a):
			continue
		}
		if !slices.Contains(keys, a) {
			keys = append(keys, a)
		}
	}
	filter := func(in []string, keep func(string) bool) []string {
		var out []string
		for _, a := range in {
			if keep(a) {
				out = append(out, a)
			}
		}
		return out
	}
	// Only what a config may name: x/crypto's arcfour* and
	// mlkem768x25519-sha256 are not OpenSSH 9.2 names, so -c arcfour256
	// or -o KexAlgorithms=mlkem768x25519-sha256 would be refused.
	usable := func(keyword string, a, b []string) []string {
		return filter(join(a, b), func(n string) bool { return config.Accepts(keyword, n) })
	}
	ciphers := usable("ciphers", supported.Ciphers, insecure.Ciphers)
	switch strings.ToLower(name) {
	case "cipher", "ciphers":
		return ciphers, nil
	case "cipher-auth":
		return filter(ciphers, func(a string) bool {
			return strings.Contains(a, "-gcm") || strings.Contains(a, "poly1305")
		}), nil
	case "mac", "macs":
		return usable("macs", supported.MACs, insecure.MACs), nil
	case "kex", "kexalgorithms":
		return usable("kexalgorithms", supported.KeyExchanges, insecure.KeyExchanges), nil
	case "kex-gss":
		return nil, nil // rssh has no GSSAPI key exchange
	case "compression":
		return []string{"none"}, nil // x/crypto does no compression
	case "key":
		return sshKeyOrder(keys), nil
	case "key-plain":
		return sshKeyOrder(filter(keys, func(a string) bool { return !isCert(a) })), nil
	case "key-cert":
		return sshKeyOrder(filter(keys, isCert)), nil
	case "key-sig":
		return sshKeyOrder(keySig), nil
	case "hostkeyalgorithms":
		return supported.HostKeys, nil
	case "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes":
		return supported.PublicKeyAuths, nil
	case "sig":
		return sshKeyOrder(filter(keySig, func(a string) bool { return !isCert(a) })), nil
	case "protocol-version":
		return []string{"2"}, nil
	case "help":
		return queries, nil
	}
	return nil, fmt.Errorf("unsupported query %q", name)
}

// runQuery prints the answer to -Q, one name a line, as ssh does.
func runQuery(name string, std stdio) int {
	answer, err := query(name)
	if err != nil {
		fail(std.err, &hintError{err, "rssh -Q help lists the queries"})
		return sshproxy.ExitFailure
	}
	for _, a := range answer {
		fmt.Fprintln(std.out, a)
	}
	return 0
}

// opensshKeyOrder is OpenSSH 9.2's key type table (sshkey.c keyimpls), the
// order its -Q key, key-plain, key-cert, key-sig and sig answers follow.
// Scripts take the first of them as the preferred type (OpenSSH's own
// hostkey-rotate test makes ed25519 its primary host key that way).
var opensshKeyOrder = []string{
	"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
	"sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com",
	"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
	"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
	"ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
	"webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
	"ssh-dss", "ssh-dss-cert-v01@openssh.com",
	"ssh-rsa", "ssh-rsa-cert-v01@openssh.com",
	"rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com",
	"rsa-sha2-512", "rsa-sha2-512-cert-v01@openssh.com",
}

// sshKeyOrder sorts key type names into OpenSSH's table order, names it
// does not know last in their own order.
func sshKeyOrder(names []string) []string {
	rank := func(a string) int {
		if i := slices.Index(opensshKeyOrder, a); i >= 0 {
			return i
		}
		return len(opensshKeyOrder)
	}
	out := slices.Clone(names)
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}
