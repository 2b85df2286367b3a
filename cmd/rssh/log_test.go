package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// ~v and ~V step through OpenSSH's levels with ssh's names (from the real
// ssh 9.2: INFO, VERBOSE, DEBUG, DEBUG2, DEBUG3, then DEBUG3 again; down to
// SILENT and no further), and the log follows at once.
func TestLogLevelSteps(t *testing.T) {
	var out bytes.Buffer
	l := newLogLevel("INFO")
	log := slog.New(newSSHLogHandler(&out, l))
	var up []string
	for range 5 {
		up = append(up, l.Step(true))
	}
	if want := "VERBOSE DEBUG DEBUG2 DEBUG3 DEBUG3"; strings.Join(up, " ") != want {
		t.Errorf("up: %s, want %s", strings.Join(up, " "), want)
	}
	log.Debug("deep", "n", 1)
	var down []string
	for range 8 {
		down = append(down, l.Step(false))
	}
	if want := "DEBUG2 DEBUG VERBOSE INFO ERROR FATAL SILENT SILENT"; strings.Join(down, " ") != want {
		t.Errorf("down: %s, want %s", strings.Join(down, " "), want)
	}
	log.Error("hidden")
	if out.String() != "debug1: deep n=1\n" {
		t.Errorf("log wrote %q", out.String())
	}
	if l.atLeastInfo() {
		t.Error("SILENT is not at least INFO")
	}
	for name, want := range map[string]string{"QUIET": "FATAL", "debug1": "DEBUG2", "DEBUG3": "DEBUG3", "bogus": "VERBOSE"} {
		if got := newLogLevel(name).Step(true); got != want {
			t.Errorf("%s then ~v: %s, want %s", name, got, want)
		}
	}
}
