package testenv

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// JSONLines parses the lines of a slog JSON log, skipping any that are not
// JSON objects (a process's other stderr output, say).
func JSONLines(log string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// JSONMatches reports whether line has every field of want: a string ending
// in "*" matches as a prefix, an int matches the float64 JSON decodes it to,
// anything else compares as printed.
func JSONMatches(line, want map[string]any) bool {
	for k, w := range want {
		got, ok := line[k]
		if !ok {
			return false
		}
		switch w := w.(type) {
		case int:
			if f, ok := got.(float64); !ok || f != float64(w) {
				return false
			}
		case string:
			g, ok := got.(string)
			if p, isPrefix := strings.CutSuffix(w, "*"); !ok || (isPrefix && !strings.HasPrefix(g, p)) || (!isPrefix && g != w) {
				return false
			}
		default:
			if fmt.Sprint(got) != fmt.Sprint(w) {
				return false
			}
		}
	}
	return true
}

// WantJSONLine waits, for at most 5 seconds, until log() holds a JSON line
// with every field of want, and returns it; it fails the test with the whole
// log otherwise. Lines a process writes as it closes a connection come a
// moment after the client sees the close, hence the wait.
func WantJSONLine(t TB, log func() string, want map[string]any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range JSONLines(log()) {
			if JSONMatches(l, want) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %v in:\n%s", want, log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
