package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rssh/rssh/envmap"
)

const (
	// TokenEnv is the variable rssh pushes into a session (and that
	// 1Password's own tools read).
	TokenEnv = "OP_SERVICE_ACCOUNT_TOKEN"
	// TokenCredential is the credential name under
	// $CREDENTIALS_DIRECTORY (systemd LoadCredential= / LoadCredentialEncrypted=).
	TokenCredential = "op-service-account-token"
	// maxTokenFile caps what is read from a token file: a Service Account
	// token is about 1 KiB.
	maxTokenFile = 64 << 10
)

// ErrNoToken is the error when none of the three places holds a token.
var ErrNoToken = errors.New("no 1Password service account token: give --token-file FILE, or a systemd credential $CREDENTIALS_DIRECTORY/" +
	TokenCredential + ", or set " + TokenEnv)

// TokenError is a token source that exists but cannot be used. It names
// the source, never the token.
type TokenError struct {
	Source string // "--token-file /path", "$CREDENTIALS_DIRECTORY/…", "OP_SERVICE_ACCOUNT_TOKEN"
	Err    error
}

func (e *TokenError) Error() string { return fmt.Sprintf("token from %s: %v", e.Source, e.Err) }
func (e *TokenError) Unwrap() error { return e.Err }

// LoadToken finds the Service Account token, in this order: tokenFile
// (--token-file), then $CREDENTIALS_DIRECTORY/op-service-account-token,
// then $OP_SERVICE_ACCOUNT_TOKEN. A --token-file that cannot be read is an
// error (it was asked for by name); a credentials directory without the
// credential falls through to the variable. One surrounding run of
// whitespace (a file's final newline) is dropped. Nothing found is
// ErrNoToken, one line that names all three.
func LoadToken(tokenFile string, getenv func(string) string) (envmap.Token, error) {
	if tokenFile != "" {
		return readTokenFile(tokenFile, "--token-file "+tokenFile)
	}
	if dir := getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, TokenCredential)
		if _, err := os.Stat(p); err == nil {
			return readTokenFile(p, "$CREDENTIALS_DIRECTORY/"+TokenCredential)
		}
	}
	if v := getenv(TokenEnv); v != "" {
		b := bytes.TrimSpace([]byte(v))
		if err := checkToken(b); err != nil {
			clear(b)
			return envmap.Token{}, &TokenError{Source: TokenEnv, Err: err}
		}
		return envmap.NewToken(b), nil
	}
	return envmap.Token{}, ErrNoToken
}

func readTokenFile(path, source string) (envmap.Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return envmap.Token{}, &TokenError{Source: source, Err: unwrapPath(err)}
	}
	defer f.Close()
	buf := make([]byte, maxTokenFile+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		clear(buf)
		return envmap.Token{}, &TokenError{Source: source, Err: unwrapPath(err)}
	}
	if n > maxTokenFile {
		clear(buf)
		return envmap.Token{}, &TokenError{Source: source, Err: fmt.Errorf("longer than %d bytes: not a token", maxTokenFile)}
	}
	t := bytes.TrimSpace(buf[:n])
	out := make([]byte, len(t))
	copy(out, t)
	clear(buf)
	if err := checkToken(out); err != nil {
		clear(out)
		return envmap.Token{}, &TokenError{Source: source, Err: err}
	}
	return envmap.NewToken(out), nil
}

// checkToken refuses what cannot be a token: nothing, or bytes that would
// break an environment entry.
func checkToken(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty")
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return errors.New("holds a control character or a line break: not a token")
		}
	}
	return nil
}

// unwrapPath drops the path from an *os.PathError: the source already
// names the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
