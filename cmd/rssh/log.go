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
	level slog.Level
	attrs []slog.Attr
}

// Levels below slog.LevelDebug carry ssh's deeper debug levels.
const (
	levelDebug2 = slog.LevelDebug - 1
	levelDebug3 = slog.LevelDebug - 2
)

func newSSHLogHandler(w io.Writer, logLevel string) slog.Handler {
	level := map[string]slog.Level{
		"QUIET":   slog.LevelError + 100,
		"FATAL":   slog.LevelError,
		"ERROR":   slog.LevelError,
		"INFO":    slog.LevelInfo,
		"VERBOSE": slog.LevelInfo,
		"DEBUG":   slog.LevelDebug,
		"DEBUG1":  slog.LevelDebug,
		"DEBUG2":  levelDebug2,
		"DEBUG3":  levelDebug3,
	}[strings.ToUpper(logLevel)]
	return &sshLogHandler{mu: new(sync.Mutex), w: w, level: level}
}

func (h *sshLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

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
