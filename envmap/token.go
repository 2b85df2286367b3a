package envmap

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[redacted]"

// Token is a Service Account token. Printing or logging it in any way shows
// "[redacted]"; the bytes come out only through [Token.Reveal].
//
// The secret stays a []byte from op's stdout (or the keychain's reply) to the
// session's env request, because Go strings cannot be wiped. Copies of a
// Token share one backing array, so [Token.Wipe] on any copy clears it for
// all. What Go does not let us reach is not wiped: bytes the runtime copied
// while growing buffers we do not own (the D-Bus client's message buffers,
// the SSH library's packet buffers) and anything the garbage collector moved.
// Wiping narrows the window; it is not a guarantee.
//
// The secret sits behind a pointer so that fmt, reaching a Token inside a
// struct through an unexported field (where it cannot call our methods),
// prints an address rather than the bytes.
type Token struct{ s *secret }

type secret struct{ b []byte }

// NewToken makes a Token that owns b: the caller must not keep using b.
func NewToken(b []byte) Token { return Token{&secret{b}} }

// Reveal returns the token's bytes for sending. It is not a copy: do not keep
// it, convert it to a string, or log it; call Wipe when the token is sent.
func (t Token) Reveal() []byte {
	if t.s == nil {
		return nil
	}
	return t.s.b
}

// IsZero reports whether t holds no secret (never set, or wiped).
func (t Token) IsZero() bool { return t.s == nil || len(t.s.b) == 0 }

// Wipe zeroes the token's bytes, in every copy of t.
func (t Token) Wipe() {
	if t.s == nil {
		return
	}
	clear(t.s.b)
	t.s.b = nil
}

func (Token) String() string   { return redacted }
func (Token) GoString() string { return "envmap.Token{" + redacted + "}" }

// Format makes every verb (%v %+v %#v %s %q %x %d …) print the redaction.
func (Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, "envmap.Token{"+redacted+"}")
		return
	}
	io.WriteString(f, redacted)
}

// LogValue keeps slog handlers (text and JSON) from reaching the bytes.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText covers encoding/json, encoding/xml and slog's JSON handler when
// a Token sits inside a struct.
func (Token) MarshalText() ([]byte, error) { return []byte(redacted), nil }

var (
	_ fmt.Stringer   = Token{}
	_ fmt.GoStringer = Token{}
	_ fmt.Formatter  = Token{}
	_ slog.LogValuer = Token{}
)
