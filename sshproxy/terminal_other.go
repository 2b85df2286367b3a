//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sshproxy

import (
	"context"
	"io"

	"golang.org/x/crypto/ssh"
)

// Modes: no termios here; the server's defaults apply.
func (t *Terminal) Modes() ssh.TerminalModes { return ssh.TerminalModes{} }

// WatchSize: no SIGWINCH here; the size sent at the start stands.
func (t *Terminal) WatchSize(ctx context.Context) <-chan WindowSize { return nil }

// Suspend is not available without job control.
func (t *Terminal) Suspend() {}

// ReadLine: no command line without poll(2) on the terminal.
func (t *Terminal) ReadLine(prompt string, w io.Writer) (string, bool) { return "", false }
