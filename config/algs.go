package config

import "strings"

// Algorithm lists of OpenSSH 9.2 (as built by Debian 12: OpenSSL, no XMSS):
// all* are what `ssh -Q` lists, def* the client defaults `ssh -G` prints.
// kexAssemble applies +, - and ^ against them as kex_assemble_names does.
const (
	allCiphers = "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr," +
		"aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
	defCiphers = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr," +
		"aes128-gcm@openssh.com,aes256-gcm@openssh.com"

	allMACs = "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,hmac-md5-96," +
		"umac-64@openssh.com,umac-128@openssh.com,hmac-sha1-etm@openssh.com," +
		"hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com," +
		"hmac-sha2-512-etm@openssh.com,hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com," +
		"umac-64-etm@openssh.com,umac-128-etm@openssh.com"
	defMACs = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com," +
		"hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com," +
		"umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1"

	allKex = "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256," +
		"diffie-hellman-group16-sha512,diffie-hellman-group18-sha512," +
		"diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256," +
		"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256," +
		"curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com"
	defKex = "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256," +
		"curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521," +
		"diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512," +
		"diffie-hellman-group18-sha512,diffie-hellman-group14-sha256"

	allKeys = "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com," +
		"sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256," +
		"ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384," +
		"ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521," +
		"ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com," +
		"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com," +
		"ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com," +
		"rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com"
	defKeys = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com," +
		"ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com," +
		"sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com," +
		"rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519," +
		"ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com," +
		"sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"

	// keyTypeNames are the key type names sshkey_names_valid2 accepts
	// (the plain and certificate types; signature-only names included).
	keyTypeNames = allKeys
)

// Accepts reports whether OpenSSH 9.2 accepts name in the algorithm list
// of keyword ("ciphers", "macs" or "kexalgorithms", lowercase): what
// `-o Ciphers=name` and the like let through. rssh -Q lists only the
// algorithms that are both implemented and accepted here.
func Accepts(keyword, name string) bool {
	switch keyword {
	case "ciphers":
		return listHas(allCiphers, name)
	case "macs":
		return listHas(allMACs, name)
	case "kexalgorithms":
		return listHas(allKex, name)
	}
	return false
}

func listHas(list, name string) bool {
	for _, n := range strings.Split(list, ",") {
		if n == name {
			return true
		}
	}
	return false
}

// namesValid reports whether every name of a comma list is in all, as
// ciphers_valid, mac_valid and kex_names_valid check (they stop at the first
// empty name, like strsep loops in OpenSSH).
func namesValid(names, all string) bool {
	if names == "" {
		return false
	}
	for _, n := range strings.Split(names, ",") {
		if n == "" {
			break
		}
		if !listHas(all, n) {
			return false
		}
	}
	return true
}

// keyNamesValid is sshkey_names_valid2 with wildcards allowed: an unknown
// name is accepted if, as a pattern, it matches (or negatively matches) a
// key type.
func keyNamesValid(names string) bool {
	if names == "" {
		return false
	}
	for _, n := range strings.Split(names, ",") {
		if n == "" {
			break
		}
		if listHas(keyTypeNames, n) {
			continue
		}
		found := false
		for _, t := range strings.Split(keyTypeNames, ",") {
			if matchPatternList(t, n, false) != 0 {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// filterAllow returns the names of list that match the pattern list
// filter, in list's order (match_filter_allowlist).
func filterAllow(list, filter string) string {
	var out []string
	for _, n := range strings.Split(list, ",") {
		if n != "" && matchPatternList(n, filter, false) == 1 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// filterDeny returns the names of list that do not match filter
// (match_filter_denylist).
func filterDeny(list, filter string) string {
	var out []string
	for _, n := range strings.Split(list, ",") {
		if n != "" && matchPatternList(n, filter, false) != 1 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// namesCat appends the names of b not already in a (kex_names_cat).
func namesCat(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	ret := a
	for _, p := range strings.Split(b, ",") {
		if p == "" {
			break
		}
		if listHas(ret, p) {
			continue
		}
		ret += "," + p
	}
	return ret
}

// kexAssemble is kex_assemble_names: "" means the defaults, +list appends,
// -list removes, ^list prepends, anything else replaces; patterns are
// expanded against all. ok is false when the result is empty or a pattern
// is negated.
func kexAssemble(list, def, all string) (string, bool) {
	if list == "" {
		return def, true
	}
	switch list[0] {
	case '+':
		list = namesCat(def, list[1:])
	case '-':
		return filterDeny(def, list[1:]), true
	case '^':
		list = namesCat(list[1:], def)
	}
	ret := ""
	for _, cp := range strings.Split(list, ",") {
		if strings.HasPrefix(cp, "!") {
			return "", false
		}
		ret = namesCat(ret, filterAllow(all, cp))
	}
	if ret == "" {
		return "", false
	}
	return ret, true
}
