package envmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestTokenRedacts(t *testing.T) {
	const secret = "ops_s3cr3t-TOKEN"
	tok := NewToken([]byte(secret))
	hexSecret := fmt.Sprintf("%x", secret)
	leaks := func(s string) bool {
		return strings.Contains(s, secret) || strings.Contains(s, "s3cr3t") ||
			strings.Contains(strings.ToLower(s), hexSecret[:12])
	}
	type wrapper struct {
		Name string
		Tok  Token
		tok  Token
		Ptr  *Token
	}
	w := wrapper{Name: "w", Tok: tok, tok: tok, Ptr: &tok}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%10s", "%T"} {
		for name, arg := range map[string]any{"token": tok, "pointer": &tok, "struct": w, "slice": []Token{tok}, "map": map[string]Token{"k": tok}} {
			if s := fmt.Sprintf(verb, arg); leaks(s) {
				t.Errorf("fmt %s of %s leaks: %s", verb, name, s)
			}
		}
	}
	for _, s := range []string{tok.String(), tok.GoString(), fmt.Sprint(tok), fmt.Sprintln(tok)} {
		if leaks(s) || !strings.Contains(s, "redacted") {
			t.Errorf("got %q, want the redaction", s)
		}
	}
	if j, err := json.Marshal(w); err != nil || leaks(string(j)) {
		t.Errorf("json: %s %v", j, err)
	}

	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler {
			return slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
		"text": func(b *bytes.Buffer) slog.Handler {
			return slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("token", "tok", tok, "ptr", &tok, "w", w, "any", slog.AnyValue(tok))
		log.Debug("group", slog.Group("g", "tok", tok), slog.Any("slice", []Token{tok}))
		log.With("tok", tok).Warn("with")
		if leaks(buf.String()) || !strings.Contains(buf.String(), "redacted") {
			t.Errorf("slog %s handler leaks or does not redact:\n%s", name, buf.String())
		}
	}

	if got := string(tok.Reveal()); got != secret {
		t.Errorf("Reveal = %q, want the secret", got)
	}
}

func TestTokenWipe(t *testing.T) {
	b := []byte("ops_wipe-me")
	tok := NewToken(b)
	cp := tok
	cp.Wipe()
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Errorf("backing bytes not zeroed: %q", b)
	}
	if !tok.IsZero() || tok.Reveal() != nil {
		t.Errorf("a copy still reveals %q after Wipe", tok.Reveal())
	}
	var zero Token
	zero.Wipe() // must not panic
	if !zero.IsZero() {
		t.Error("zero Token is not IsZero")
	}
}

func TestTrimNewlineWipesTail(t *testing.T) {
	b := []byte("tok\r\n")
	out := trimNewline(b)
	if string(out) != "tok" || b[3] != 0 || b[4] != 0 {
		t.Errorf("trimNewline: %q, backing %q", out, b)
	}
}
