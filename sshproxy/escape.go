package sshproxy

import (
	"fmt"
	"io"
)

// EscapeNone turns escape sequences off (EscapeChar none).
const EscapeNone = -1

// escapeAction is what an escape sequence asks the session to do beyond
// filtering input.
type escapeAction int

const (
	escNone       escapeAction = iota
	escDisconnect              // ~.
	escBreak                   // ~B
	escSuspend                 // ~^Z
)

// escapeFilter is OpenSSH's process_escapes for a PTY session: the escape
// character is special only right after a newline (or at the very start),
// and the next byte says what to do. Feedback goes to the local terminal
// (stderr), with \r\n because the terminal is in raw mode.
type escapeFilter struct {
	char      byte
	msg       io.Writer
	lastWasCR bool // last byte sent was \r or \n (true at the start)
	pending   bool // the escape char was seen, its command not yet
}

func newEscapeFilter(char byte, msg io.Writer) *escapeFilter {
	return &escapeFilter{char: char, msg: msg, lastWasCR: true}
}

// filter returns the bytes of in to send to the remote, stopping at the
// first action; rest is the input after it, to be filtered again once the
// action is done.
func (e *escapeFilter) filter(in []byte) (out []byte, act escapeAction, rest []byte) {
	out = make([]byte, 0, len(in)+1)
	for i, ch := range in {
		if e.pending {
			e.pending = false
			switch ch {
			case '.':
				fmt.Fprintf(e.msg, "%c.\r\n", e.char)
				return out, escDisconnect, in[i+1:]
			case 'B':
				fmt.Fprintf(e.msg, "%cB\r\n", e.char)
				return out, escBreak, in[i+1:]
			case 'Z' - 64:
				fmt.Fprintf(e.msg, "%c^Z [suspend rssh]\r\n", e.char)
				return out, escSuspend, in[i+1:]
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
		} else if e.lastWasCR && ch == e.char {
			e.pending = true
			continue
		}
		e.lastWasCR = ch == '\r' || ch == '\n'
		out = append(out, ch)
	}
	return out, escNone, nil
}

func (e *escapeFilter) help() {
	c := e.char
	fmt.Fprintf(e.msg, "%c?\r\nSupported escape sequences:\r\n", c)
	for _, l := range []struct{ cmd, text string }{
		{".", "terminate connection"},
		{"B", "send a BREAK to the remote system"},
		{"^Z", "suspend rssh"},
		{"?", "this message"},
	} {
		fmt.Fprintf(e.msg, " %c%-3s - %s\r\n", c, l.cmd, l.text)
	}
	fmt.Fprintf(e.msg, " %c%c   - send the escape character by typing it twice\r\n"+
		"(Note that escapes are only recognized immediately after newline.)\r\n", c, c)
}
