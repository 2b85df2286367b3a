package sshproxy

import (
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// EscapeNone turns escape sequences off (EscapeChar none).
const EscapeNone = -1

// escapeAction is what an escape sequence asks the session to do beyond
// filtering input.
type escapeAction int

const (
	escNone        escapeAction = iota
	escDisconnect               // ~.
	escBreak                    // ~B
	escSuspend                  // ~^Z
	escList                     // ~#
	escCommandLine              // ~C
	escMoreVerbose              // ~v
	escLessVerbose              // ~V
)

// escapeFilter is OpenSSH's process_escapes for a PTY session: the escape
// character is special only right after a newline (or at the very start),
// and the next byte says what to do. Feedback goes to the local terminal
// (stderr), with \r\n because the terminal is in raw mode.
//
// Not here, as not in rssh: ~R (x/crypto/ssh gives a client no way to
// start a key re-exchange) and ~& (rssh does not wait for forwarded
// connections at logout, the only time OpenSSH's ~& makes sense, and a Go
// program cannot fork to leave them to a child). Those, like any other
// byte, reach the remote with the escape character.
type escapeFilter struct {
	char      byte
	cmdline   bool // ~C is enabled (EnableEscapeCommandline)
	msg       io.Writer
	lastWasCR bool // last byte sent was \r or \n (true at the start)
	pending   bool // the escape char was seen, its command not yet
}

func newEscapeFilter(char byte, cmdline bool, msg io.Writer) *escapeFilter {
	return &escapeFilter{char: char, cmdline: cmdline, msg: msg, lastWasCR: true}
}

// filter returns the bytes of in to send to the remote, stopping at the
// first action; rest is the input after it, to be filtered again once the
// action is done.
func (e *escapeFilter) filter(in []byte) (out []byte, act escapeAction, rest []byte) {
	out = make([]byte, 0, len(in)+1)
	for i, ch := range in {
		if e.pending {
			e.pending = false
			act := escNone
			switch ch {
			case '.':
				fmt.Fprintf(e.msg, "%c.\r\n", e.char)
				act = escDisconnect
			case 'B':
				fmt.Fprintf(e.msg, "%cB\r\n", e.char)
				act = escBreak
			case 'Z' - 64:
				fmt.Fprintf(e.msg, "%c^Z [suspend rssh]\r\n", e.char)
				act = escSuspend
			case '#':
				fmt.Fprintf(e.msg, "%c#\r\n", e.char)
				act = escList
			case 'C':
				if !e.cmdline {
					io.WriteString(e.msg, "commandline disabled\r\n")
					continue
				}
				act = escCommandLine
			case 'v':
				act = escMoreVerbose
			case 'V':
				act = escLessVerbose
			case '?':
				e.help()
				continue
			default:
				// Not a command: the escape char goes through too, unless
				// this is the escape char doubled.
				if ch != e.char {
					out = append(out, e.char)
				}
			}
			if act != escNone {
				return out, act, in[i+1:]
			}
		} else if e.lastWasCR && ch == e.char {
			e.pending = true
			continue
		}
		e.lastWasCR = ch == '\r' || ch == '\n'
		out = append(out, ch)
	}
	return out, escNone, nil
}

// help is print_escape_help for a session that is not multiplexed, less
// the escapes rssh does not have.
func (e *escapeFilter) help() {
	c := e.char
	fmt.Fprintf(e.msg, "%c?\r\nSupported escape sequences:\r\n", c)
	for _, l := range []struct {
		cmd, text string
		show      bool
	}{
		{".", "terminate connection", true},
		{"B", "send a BREAK to the remote system", true},
		{"C", "open a command line", e.cmdline},
		{"V/v", "decrease/increase verbosity (LogLevel)", true},
		{"^Z", "suspend rssh", true},
		{"#", "list forwarded connections", true},
		{"?", "this message", true},
	} {
		if l.show {
			fmt.Fprintf(e.msg, " %c%-3s - %s\r\n", c, l.cmd, l.text)
		}
	}
	fmt.Fprintf(e.msg, " %c%c   - send the escape character by typing it twice\r\n"+
		"(Note that escapes are only recognized immediately after newline.)\r\n", c, c)
}

// escapes carries out the actions of one PTY session's escapes.
type escapes struct {
	c          *Conn
	sess       *ssh.Session
	pty        *PTY
	msg        io.Writer   // the local terminal
	hold       *sync.Mutex // held, remote output waits (the command line)
	disconnect chan struct{}
}

// do handles one action and says whether to go on reading input.
func (e *escapes) do(a escapeAction) bool {
	term := e.pty.Terminal
	switch a {
	case escDisconnect:
		close(e.disconnect)
		return false
	case escBreak:
		e.sess.SendRequest("break", false, ssh.Marshal(struct{ Ms uint32 }{1000}))
	case escSuspend:
		term.Suspend()
		ws := term.Size()
		e.sess.WindowChange(ws.Height, ws.Width)
	case escList:
		io.WriteString(e.msg, e.c.openMessage())
	case escMoreVerbose, escLessVerbose:
		ch := byte('v')
		if a == escLessVerbose {
			ch = 'V'
		}
		if e.pty.Verbosity == nil {
			// OpenSSH's words whenever its log is not on stderr (-E too).
			fmt.Fprintf(e.msg, "%c%c [Logging to syslog]\r\n", e.pty.EscapeChar, ch)
			break
		}
		fmt.Fprintf(e.msg, "%c%c [LogLevel %s]\r\n", e.pty.EscapeChar, ch, e.pty.Verbosity(a == escMoreVerbose))
	case escCommandLine:
		e.commandLine()
	}
	return true
}

// commandLine is ~C, OpenSSH's process_cmdline: the terminal leaves raw
// mode for one line read with echo after "\r\nssh> ", and remote output
// waits meanwhile, as OpenSSH's client loop stops while it reads.
func (e *escapes) commandLine() {
	e.hold.Lock()
	defer e.hold.Unlock()
	term := e.pty.Terminal
	wasRaw := term.Raw()
	term.Restore()
	if wasRaw {
		defer term.MakeRaw()
	}
	line, ok := term.ReadLine("\r\nssh> ", e.msg)
	if ok {
		e.pty.Forwarding.command(line)
	}
}

// heldWriter passes writes on unless the command line holds mu.
type heldWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (h heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.w.Write(p)
}
