package sshproxy

import (
	"bytes"
	"strings"
	"testing"
)

func TestEscapeFilter(t *testing.T) {
	for _, c := range []struct {
		name   string
		char   byte
		chunks []string // fed one after another, as reads would arrive
		send   string
		act    escapeAction
		msg    string
	}{
		{"disconnect at start", '~', []string{"~."}, "", escDisconnect, "~.\r\n"},
		{"disconnect after newline", '~', []string{"ls\r~."}, "ls\r", escDisconnect, "~.\r\n"},
		{"split across reads", '~', []string{"x\n", "~", "."}, "x\n", escDisconnect, "~.\r\n"},
		{"not after other text", '~', []string{"a~.b"}, "a~.b", escNone, ""},
		{"doubled sends one", '~', []string{"~~x"}, "~x", escNone, ""},
		{"doubled then not special", '~', []string{"~~."}, "~.", escNone, ""},
		{"unknown passes both", '~', []string{"~q"}, "~q", escNone, ""},
		{"other escape char", '%', []string{"~.\r%."}, "~.\r", escDisconnect, "%.\r\n"},
		{"help", '~', []string{"~?"}, "", escNone, "~?\r\nSupported escape sequences:\r\n"},
		{"break", '~', []string{"\r~B"}, "\r", escBreak, "~B\r\n"},
		{"suspend", '~', []string{"~\x1a"}, "", escSuspend, "~^Z [suspend rssh]\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var msg bytes.Buffer
			f := newEscapeFilter(c.char, &msg)
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
