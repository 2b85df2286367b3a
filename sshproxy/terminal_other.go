//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sshproxy

import (
	"context"

	"golang.org/x/crypto/ssh"
)

// Modes: no termios here; the server's defaults apply.
func (t *Terminal) Modes() ssh.TerminalModes { return ssh.TerminalModes{} }

// WatchSize: no SIGWINCH here; the size sent at the start stands.
func (t *Terminal) WatchSize(ctx context.Context) <-chan WindowSize { return nil }

// Suspend is not available without job control.
func (t *Terminal) Suspend() {}
