package hostkeys

import (
	"crypto/rand"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// randReader is the salt source; a test seam.
var randReader io.Reader = rand.Reader

// Append records key for the host in file, as OpenSSH's add_host_to_hostfile
// does for StrictHostKeyChecking accept-new or a confirmed prompt: one line
// "name key-type base64", name lowercased and written "[name]:port" for a
// port other than 22 (pass port 0 with a HostKeyAlias). With hash
// (HashKnownHosts yes) the name is written hashed, |1|salt|hmac-sha1.
//
// The file and its directory (mode 0700) are created when missing, the file
// with mode 0600. Existing content is never rewritten: the line is appended
// in one write, after a newline when the file does not end in one. A
// certificate is recorded as its plain key, as OpenSSH records the key it
// falls back to.
func Append(file, name string, port int, key ssh.PublicKey, hash bool) error {
	key = plain(key)
	host := lookupName(lowerASCII(name), port)
	if host == "" || strings.ContainsAny(host, " \t\r\n\x00") ||
		!hash && strings.ContainsAny(host[:1], "#@|") {
		return fmt.Errorf("cannot record host key: %q is not a host name", host)
	}
	if hash {
		salt := make([]byte, sha1.Size)
		if _, err := io.ReadFull(randReader, salt); err != nil {
			return fmt.Errorf("cannot record host key: salt: %w", err)
		}
		host = hashHost(host, salt)
	}
	line := host + " " + strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n") + "\n"

	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("cannot record host key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot record host key: %w", err)
	}
	if needsNewline(file) {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("cannot record host key in %s: %w", file, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot record host key in %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot record host key in %s: %w", file, err)
	}
	return nil
}

// needsNewline reports whether file is non-empty and does not end in '\n'.
func needsNewline(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, fi.Size()-1); err != nil {
		return false
	}
	return b[0] != '\n'
}
