package sshproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/hostkeys"
)

// maxKnownHostsCommandOutput bounds what KnownHostsCommand may print; more
// is a failure, since reading part of it could miss a @revoked line.
const maxKnownHostsCommandOutput = 16 << 20

// KnownHostsCommandError is a KnownHostsCommand that ran and failed: as
// ssh ("KnownHostsCommand failed"), the connection is given up.
type KnownHostsCommandError struct{ Msg string }

func (e *KnownHostsCommandError) Error() string { return e.Msg }

// knownHostsCommand adds what cfg's KnownHostsCommand prints to db, as
// OpenSSH's load_hostkeys_command: the command is split into words as
// argv_split does, each argument after the first expanded (the client
// %-tokens, %H the known_hosts lookup name, %I the invocation — ORDER before
// key exchange, HOSTNAME for the host key check —, and %t %f %K the host
// key's type, fingerprint and base64, or NONE), run without a shell, with
// its output read as known_hosts lines after the files'. A command that
// cannot be run is reported and skipped; one that exits non-zero ends the
// connection.
func (cl *Client) knownHostsCommand(db *hostkeys.DB, cfg *config.Config, invocation, lookup string, key ssh.PublicKey) (*hostkeys.DB, error) {
	if cfg.KnownHostsCommand == "" {
		return db, nil
	}
	tag := "KnownHostsCommand-" + invocation
	av, err := argvSplit(cfg.KnownHostsCommand)
	if err != nil {
		cl.warn(fmt.Sprintf("%s %q contains invalid quotes", tag, cfg.KnownHostsCommand))
		return db, nil
	}
	if len(av) == 0 {
		cl.warn(fmt.Sprintf("%s %q yielded no arguments", tag, cfg.KnownHostsCommand))
		return db, nil
	}
	extra := map[byte]string{'H': lookup, 'I': invocation, 't': "NONE", 'f': "NONE", 'K': "NONE"}
	if key != nil {
		extra['t'] = key.Type()
		extra['f'] = fingerprint(key)
		b64 := ssh.MarshalAuthorizedKey(key)
		_, b64, _ = bytes.Cut(bytes.TrimSpace(b64), []byte(" "))
		extra['K'] = string(b64)
	}
	for i := 1; i < len(av); i++ {
		if av[i], err = cfg.ExpandKnownHostsCommandArg(av[i], extra); err != nil {
			return nil, &KnownHostsCommandError{Msg: fmt.Sprintf("%s: %v", tag, err)}
		}
	}
	command := strings.Join(av, " ")
	if !filepath.IsAbs(av[0]) {
		cl.warn(fmt.Sprintf("%s path is not absolute", tag))
		return db, nil
	}
	if _, err := os.Stat(av[0]); err != nil {
		cl.warn(fmt.Sprintf("Could not stat %s %q: %v", tag, av[0], strerrorOf(err)))
		return db, nil
	}
	cl.Log.Debug("executing "+tag, "command", command)
	cmd := exec.Command(av[0], av[1:]...)
	cmd.Env = commandEnv(os.Environ())
	cmd.Stderr = cl.Stderr
	var out bytes.Buffer
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cl.warn(fmt.Sprintf("%s: %s: %v", tag, command, unwrapOp(err)))
		return db, nil
	}
	n, rerr := io.Copy(&out, io.LimitReader(stdout, maxKnownHostsCommandOutput+1))
	if n > maxKnownHostsCommandOutput {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, &KnownHostsCommandError{Msg: fmt.Sprintf("KnownHostsCommand failed: %s printed more than %d bytes", command, maxKnownHostsCommandOutput)}
	}
	werr := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(werr, &ee) && ee.Exited():
		return nil, &KnownHostsCommandError{Msg: fmt.Sprintf("KnownHostsCommand failed: %s %s failed, status %d", tag, command, ee.ExitCode())}
	case errors.As(werr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return nil, &KnownHostsCommandError{Msg: fmt.Sprintf("KnownHostsCommand failed: %s %s exited on signal %d", tag, command, ws.Signal())}
		}
		return nil, &KnownHostsCommandError{Msg: fmt.Sprintf("KnownHostsCommand failed: %s %s: %v", tag, command, werr)}
	case werr != nil:
		return nil, &KnownHostsCommandError{Msg: fmt.Sprintf("KnownHostsCommand failed: %s %s: %v", tag, command, werr)}
	case rerr != nil:
		return nil, &KnownHostsCommandError{Msg: fmt.Sprintf("KnownHostsCommand failed: reading its output: %v", rerr)}
	}
	return db.WithLines(tag, out.Bytes()), nil
}

// strerrorOf is an error's errno in C's words ("No such file or
// directory"), or the error as Go says it.
func strerrorOf(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

func (cl *Client) warn(msg string) {
	if cl.Stderr != nil {
		fmt.Fprintln(cl.Stderr, "rssh: "+msg)
	}
}

// commandEnv is rssh's environment for a helper it runs: as ssh's, less
// any 1Password token, which a known_hosts helper has no use for.
func commandEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if strings.HasPrefix(kv, "OP_SERVICE_ACCOUNT_TOKEN=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// argvSplit is OpenSSH's argv_split(s, …, 0): words split at blanks and
// tabs, single and double quotes group, a backslash escapes a quote, a
// backslash, or (outside quotes) a space; other backslashes stay.
func argvSplit(s string) ([]string, error) {
	var av []string
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			continue
		}
		var arg []byte
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || quote == 0 && s[i+1] == ' '):
				i++
				arg = append(arg, s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				arg = append(arg, c)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errors.New("unterminated quote")
		}
		av = append(av, string(arg))
	}
	return av, nil
}
