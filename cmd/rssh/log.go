package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// sshLogHandler writes log records the way ssh writes its own: warnings as
// plain lines, debug records as "debug1: …" to "debug3: …", so -v output
// reads like OpenSSH's.
type sshLogHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	attrs []slog.Attr
}

// Levels below slog.LevelDebug carry ssh's deeper debug levels.
const (
	levelDebug2 = slog.LevelDebug - 1
	levelDebug3 = slog.LevelDebug - 2
)

func newSSHLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return &sshLogHandler{mu: new(sync.Mutex), w: w, level: level}
}

// sshLevels are LogLevel's steps in OpenSSH's order, named as ssh -G and
// ~v name them. VERBOSE shows what INFO shows: rssh has no lines of its own
// at VERBOSE.
var sshLevels = []struct {
	name  string
	level slog.Level
}{
	{"SILENT", slog.LevelError + 100}, {"FATAL", slog.LevelError}, {"ERROR", slog.LevelError},
	{"INFO", slog.LevelInfo}, {"VERBOSE", slog.LevelInfo}, {"DEBUG", slog.LevelDebug},
	{"DEBUG2", levelDebug2}, {"DEBUG3", levelDebug3},
}

const stepInfo = 3 // INFO in sshLevels

// logLevel is the client's LogLevel while it runs; ~v and ~V step it.
type logLevel struct {
	mu   sync.Mutex
	step int // index in sshLevels
	v    slog.LevelVar
}

// newLogLevel starts at a LogLevel as config resolves it (QUIET … DEBUG3),
// INFO for anything else.
func newLogLevel(name string) *logLevel {
	switch name = strings.ToUpper(name); name {
	case "QUIET":
		name = "SILENT"
	case "DEBUG1":
		name = "DEBUG"
	}
	l := &logLevel{step: stepInfo}
	for i, s := range sshLevels {
		if s.name == name {
			l.step = i
		}
	}
	l.v.Set(sshLevels[l.step].level)
	return l
}

func (l *logLevel) Level() slog.Level { return l.v.Level() }

// Step is ~v (more) or ~V: one level up or down, no further than DEBUG3
// or QUIET, and the new level's name.
func (l *logLevel) Step(more bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if more {
		l.step = min(l.step+1, len(sshLevels)-1)
	} else {
		l.step = max(l.step-1, 0)
	}
	l.v.Set(sshLevels[l.step].level)
	return sshLevels[l.step].name
}

// atLeastInfo is OpenSSH's log_level >= SYSLOG_LEVEL_INFO, as it is now.
func (l *logLevel) atLeastInfo() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.step >= stepInfo
}

func (h *sshLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *sshLogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	switch {
	case r.Level <= levelDebug3:
		b.WriteString("debug3: ")
	case r.Level <= levelDebug2:
		b.WriteString("debug2: ")
	case r.Level <= slog.LevelDebug:
		b.WriteString("debug1: ")
	}
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Resolve())
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *sshLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *sshLogHandler) WithGroup(string) slog.Handler { return h }
