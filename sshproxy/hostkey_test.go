package sshproxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/testenv"
)

// The host-key callback refuses, never panics, whatever the known_hosts
// files are: none at all (UserKnownHostsFile and GlobalKnownHostsFile
// none, which used to index an empty list), or a changed key known only
// from the global file. Without a user file nothing new is accepted, in
// any StrictHostKeyChecking mode, as in OpenSSH.
func TestHostKeyPolicyWithoutUserFile(t *testing.T) {
	dir := t.TempDir()
	key, other := testenv.NewPublicKey(t), testenv.NewPublicKey(t)
	global := filepath.Join(dir, "global")
	line := fmt.Sprintf("[h.example]:2222 %s", ssh.MarshalAuthorizedKey(other))
	if err := os.WriteFile(global, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := &Client{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Stderr: io.Discard}
	for _, globals := range [][]string{nil, {global}} {
		for _, mode := range []string{"yes", "accept-new", "no", "ask"} {
			cfg := &config.Config{Hostname: "h.example", Port: 2222, StrictHostKeyChecking: mode, GlobalKnownHostsFiles: globals}
			cb, _, err := cl.hostKeyPolicy(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			var herr *HostKeyError
			err = func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				return cb("h.example:2222", nil, key)
			}()
			if !errors.As(err, &herr) {
				t.Errorf("globals %v, StrictHostKeyChecking %s: got %v, want a host key refusal", globals, mode, err)
				continue
			}
			if globals != nil && !strings.Contains(herr.Hint, global) {
				t.Errorf("changed key: the hint should name the global file holding the old key: %q", herr.Hint)
			}
		}
	}
}
