package hostkeys

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// UpdateHostKeys: an OpenSSH server sends all its host keys after
// authentication (hostkeys-00@openssh.com) so the client can learn new ones
// and forget retired ones. Plan is client_input_hostkeys' look at the user
// known_hosts files (clientloop.c, hostkeys_find and
// check_old_keys_othernames); Replace is hostfile_replace_entries
// (hostfile.c). CheckHostIP is not applied: only the host name (or
// HostKeyAlias) is looked up and written, as ssh does with CheckHostIP no,
// its default.

// Plan is what an update would change for one host.
type Plan struct {
	// Keys are the server's keys given to PlanUpdate, in order.
	Keys []ssh.PublicKey
	// Known says, for each of Keys, whether a line naming the host has it.
	Known []bool
	// New are the indexes of Keys no line names the host with: the server
	// must prove it holds each before it is recorded.
	New []int
	// Old are keys on lines naming the host that the server did not send:
	// retired, to be removed.
	Old []ssh.PublicKey
	// Skip, when not empty, says why the files must not be changed
	// (OpenSSH's reasons, as its debug lines give them).
	Skip string
}

// PlanUpdate reads the user known_hosts files for the host name (the
// hostname or HostKeyAlias, lowercased by the caller's rules; port as for
// Check) and compares them with the keys the server sent. A missing file is
// skipped; a file that cannot be read is an error.
func PlanUpdate(files []string, name string, port int, keys []ssh.PublicKey) (*Plan, error) {
	host := lookupName(lowerASCII(name), port)
	p := &Plan{Keys: keys, Known: make([]bool, len(keys))}
	complexSpec, otherName := false, false
	for _, f := range files {
		lines, err := readLines(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			e := l.entry
			if e == nil {
				continue
			}
			if !e.matches(host) {
				if indexKey(keys, e.key) >= 0 {
					otherName = true
				}
				continue
			}
			if e.marker != "" {
				complexSpec = true
				continue
			}
			if e.hashed == nil && hostspecIsComplex(e.hosts) {
				complexSpec = true
				continue
			}
			if i := indexKey(keys, e.key); i >= 0 {
				p.Known[i] = true
				continue
			}
			p.Old = append(p.Old, e.key)
		}
	}
	for i := range keys {
		if !p.Known[i] {
			p.New = append(p.New, i)
		}
	}
	switch {
	case len(p.New) == 0 && len(p.Old) == 0:
		p.Skip = "no new or deprecated keys from server"
	case complexSpec:
		p.Skip = "CA/revocation marker, manual host list or wildcard host pattern found, skipping UserKnownHostsFile update"
	case otherName:
		p.Skip = "host key found matching a different name/address, skipping UserKnownHostsFile update"
	case len(p.Old) > 0:
		// Keys to remove that other names still use: removing them here
		// would leave those names inconsistent.
		for _, f := range files {
			lines, err := readLines(f)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, l := range lines {
				if l.entry != nil && !l.entry.matches(host) && indexKey(p.Old, l.entry.key) >= 0 {
					p.Skip = fmt.Sprintf("key(s) for %s exist under other names; skipping UserKnownHostsFile update", host)
					return p, nil
				}
			}
		}
	}
	return p, nil
}

// hostspecIsComplex is clientloop.c's hostspec_is_complex: a wildcard, or a
// list of more than two names (ssh never writes those).
func hostspecIsComplex(hosts string) bool {
	if strings.ContainsAny(hosts, "*?") {
		return true
	}
	i := strings.IndexByte(hosts, ',')
	return i >= 0 && strings.IndexByte(hosts[i+1:], ',') >= 0
}

// indexKey is the index in keys of a key equal to k (sshkey_equal: same
// type and blob), or -1.
func indexKey(keys []ssh.PublicKey, k ssh.PublicKey) int {
	if k == nil {
		return -1
	}
	b := k.Marshal()
	for i, c := range keys {
		if c != nil && bytes.Equal(c.Marshal(), b) {
			return i
		}
	}
	return -1
}

// rawLine is one line of a known_hosts file as written (without its
// newline) and, when it is a valid host line, what it says.
type rawLine struct {
	text  string
	entry *entry
}

func readLines(file string) ([]rawLine, error) {
	data, err := readBounded(file)
	if err != nil {
		return nil, err
	}
	var out []rawLine
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		l := rawLine{text: string(line)}
		parse := line
		if i := bytes.IndexByte(parse, 0); i >= 0 {
			parse = parse[:i]
		}
		if len(parse) <= maxLineLen {
			if e, err := parseLine(string(parse)); err == nil && e != nil {
				l.entry = e
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// Replace rewrites file for the host as OpenSSH's hostfile_replace_entries
// does: lines naming the host (no @cert-authority or @revoked marker) whose
// key is not among keys are removed, every other line (comments, other
// hosts, lines it cannot parse) is kept as written, and the keys no kept
// line has are added at the end, the name hashed with hash. The new content
// goes to a temporary file beside it (mode 0600) that is renamed over file
// once complete, after the old file is linked to FILE.old; nothing is
// written when nothing changes. It returns one line per change, in
// OpenSSH's words.
func Replace(file, name string, port int, keys []ssh.PublicKey, hash bool) ([]string, error) {
	host := lookupName(lowerASCII(name), port)
	if host == "" || strings.ContainsAny(host, " \t\r\n\x00") ||
		!hash && strings.ContainsAny(host[:1], "#@|") {
		return nil, fmt.Errorf("cannot update host keys: %q is not a host name", host)
	}
	lines, err := readLines(file)
	if err != nil {
		return nil, fmt.Errorf("cannot update host keys in %s: %w", file, err)
	}
	var out bytes.Buffer
	var changes []string
	seen := make([]bool, len(keys))
	for n, l := range lines {
		e := l.entry
		if e != nil && e.marker == "" && e.matches(host) {
			if i := indexKey(keys, e.key); i >= 0 {
				seen[i] = true
				out.WriteString(l.text + "\n")
				continue
			}
			changes = append(changes, fmt.Sprintf("%s:%d: Removed %s key for host %s", file, n+1, keyTypeName(e.key), host))
			continue
		}
		out.WriteString(l.text + "\n")
	}
	for i, k := range keys {
		if k == nil || seen[i] {
			continue
		}
		written := host
		if hash {
			salt := make([]byte, sha1.Size)
			if _, err := io.ReadFull(randReader, salt); err != nil {
				return nil, fmt.Errorf("cannot update host keys: salt: %w", err)
			}
			written = hashHost(host, salt)
		}
		out.WriteString(written + " " + strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n") + "\n")
		changes = append(changes, fmt.Sprintf("Adding new key for %s to %s: %s %s", host, file, k.Type(), ssh.FingerprintSHA256(k)))
	}
	if len(changes) == 0 {
		return nil, nil
	}
	if err := writeReplacing(file, out.Bytes()); err != nil {
		return nil, fmt.Errorf("cannot update host keys in %s: %w", file, err)
	}
	return changes, nil
}

// writeReplacing puts data in file through a temporary file in the same
// directory, keeping the previous file as FILE.old (a hard link, as
// OpenSSH makes it).
func writeReplacing(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	back := file + ".old"
	if err := os.Remove(back); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Link(file, back); err != nil {
		return err
	}
	if err := os.Rename(name, file); err != nil {
		return err
	}
	ok = true
	return nil
}

// keyTypeName is sshkey_type: OpenSSH's short name for a key's type.
func keyTypeName(k ssh.PublicKey) string {
	t := k.Type()
	if c, ok := k.(*ssh.Certificate); ok {
		t = c.Key.Type()
	}
	switch {
	case strings.HasPrefix(t, "ssh-ed25519"):
		return "ED25519"
	case strings.HasPrefix(t, "sk-ssh-ed25519"):
		return "ED25519-SK"
	case strings.HasPrefix(t, "ecdsa"):
		return "ECDSA"
	case strings.HasPrefix(t, "sk-ecdsa"):
		return "ECDSA-SK"
	case strings.HasPrefix(t, "ssh-rsa"):
		return "RSA"
	case strings.HasPrefix(t, "ssh-dss"):
		return "DSA"
	}
	return strings.ToUpper(t)
}
