package sshproxy

import (
	"bytes"
	"strings"
	"testing"
)

func TestEscapeFilter(t *testing.T) {
	for _, c := range []struct {
		name    string
		char    byte
		cmdline bool
		chunks  []string // fed one after another, as reads would arrive
		send    string
		act     escapeAction
		msg     string
	}{
		{"disconnect at start", '~', false, []string{"~."}, "", escDisconnect, "~.\r\n"},
		{"disconnect after newline", '~', false, []string{"ls\r~."}, "ls\r", escDisconnect, "~.\r\n"},
		{"split across reads", '~', false, []string{"x\n", "~", "."}, "x\n", escDisconnect, "~.\r\n"},
		{"not after other text", '~', false, []string{"a~.b"}, "a~.b", escNone, ""},
		{"doubled sends one", '~', false, []string{"~~x"}, "~x", escNone, ""},
		{"doubled then not special", '~', false, []string{"~~."}, "~.", escNone, ""},
		{"unknown passes both", '~', false, []string{"~q"}, "~q", escNone, ""},
		{"other escape char", '%', false, []string{"~.\r%."}, "~.\r", escDisconnect, "%.\r\n"},
		{"help", '~', false, []string{"~?"}, "", escNone, "~?\r\nSupported escape sequences:\r\n"},
		{"break", '~', false, []string{"\r~B"}, "\r", escBreak, "~B\r\n"},
		{"suspend", '~', false, []string{"~\x1a"}, "", escSuspend, "~^Z [suspend rssh]\r\n"},
		{"list", '~', false, []string{"\r~#"}, "\r", escList, "~#\r\n"},
		{"more verbose", '~', false, []string{"~v"}, "", escMoreVerbose, ""},
		{"less verbose", '~', false, []string{"~V"}, "", escLessVerbose, ""},
		{"command line", '~', true, []string{"~C"}, "", escCommandLine, ""},
		{"command line disabled", '~', false, []string{"~Cx"}, "x", escNone, "commandline disabled\r\n"},
		{"escape again after disabled ~C", '~', false, []string{"~C~."}, "", escDisconnect, "commandline disabled\r\n~.\r\n"},
		// Escapes rssh does not have are text for the remote, as any byte.
		{"no rekey", '~', false, []string{"~R"}, "~R", escNone, ""},
		{"no background", '~', false, []string{"~&"}, "~&", escNone, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var msg bytes.Buffer
			f := newEscapeFilter(c.char, c.cmdline, &msg)
			var sent []byte
			act := escNone
			for _, ch := range c.chunks {
				out, a, _ := f.filter([]byte(ch))
				sent = append(sent, out...)
				if a != escNone {
					act = a
					break
				}
			}
			if string(sent) != c.send || act != c.act || !strings.HasPrefix(msg.String(), c.msg) {
				t.Errorf("sent %q act %d msg %q; want %q %d %q", sent, act, msg.String(), c.send, c.act, c.msg)
			}
		})
	}
}

// ~? lists what rssh supports in OpenSSH's layout: ~C only when the
// command line is enabled, and never ~R or ~&.
func TestEscapeHelp(t *testing.T) {
	for _, cmdline := range []bool{false, true} {
		var msg bytes.Buffer
		newEscapeFilter('~', cmdline, &msg).filter([]byte("~?"))
		want := "~?\r\nSupported escape sequences:\r\n" +
			" ~.   - terminate connection\r\n" +
			" ~B   - send a BREAK to the remote system\r\n"
		if cmdline {
			want += " ~C   - open a command line\r\n"
		}
		want += " ~V/v - decrease/increase verbosity (LogLevel)\r\n" +
			" ~^Z  - suspend rssh\r\n" +
			" ~#   - list forwarded connections\r\n" +
			" ~?   - this message\r\n" +
			" ~~   - send the escape character by typing it twice\r\n" +
			"(Note that escapes are only recognized immediately after newline.)\r\n"
		if msg.String() != want {
			t.Errorf("cmdline %v: help is\n%q\nwant\n%q", cmdline, msg.String(), want)
		}
	}
}
