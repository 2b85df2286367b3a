package secret

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// maskAll runs s through a masker in the given chunk sizes and flushes.
func maskAll(m *Masker, s string, chunks []int) string {
	var out []byte
	b := []byte(s)
	for _, n := range chunks {
		if n > len(b) {
			n = len(b)
		}
		out = append(out, m.Write(b[:n])...)
		b = b[n:]
	}
	out = append(out, m.Write(b)...)
	return string(append(out, m.Flush()...))
}

func TestMaskerReplaces(t *testing.T) {
	c := Concealed
	for _, tc := range []struct {
		secrets []string
		in, out string
	}{
		{[]string{"hunter2"}, "pw=hunter2\n", "pw=" + c + "\n"},
		{[]string{"hunter2"}, "hunter2hunter2", c + c},
		{[]string{"hunter2"}, "hunter", "hunter"},
		{[]string{"abc", "abcdef"}, "xabcdefy abcx", "x" + c + "y " + c + "x"},
		{[]string{"abcd", "bc"}, "abce", "a" + c + "e"},
		{[]string{"aab"}, "aaab", "a" + c},
		{[]string{""}, "anything", "anything"},
		{[]string{"$(touch X)"}, "v=$(touch X)", "v=" + c},
		{[]string{"naïve ünïcode"}, "«naïve ünïcode»", "«" + c + "»"},
		// A multi-line secret printed whole is one mask; printed line by
		// line (here with a prefix per line) each long line is masked.
		{[]string{"-----BEGIN KEY-----\nAAAAsecretbody\n-----END KEY-----\n"},
			"key:\n-----BEGIN KEY-----\nAAAAsecretbody\n-----END KEY-----\n.", "key:\n" + c + "."},
		{[]string{"line-one-secret\r\nline-two-secret"},
			"log: line-one-secret\nlog: line-two-secret\n", "log: " + c + "\nlog: " + c + "\n"},
		{[]string{"{\nlongsecretline\n}"}, "{ } longsecretline", "{ } " + c},
	} {
		var vals [][]byte
		for _, s := range tc.secrets {
			vals = append(vals, []byte(s))
		}
		if got := maskAll(NewMasker(vals), tc.in, nil); got != tc.out {
			t.Errorf("mask %q in %q = %q, want %q", tc.secrets, tc.in, got, tc.out)
		}
	}
}

// Every way of splitting the stream into writes gives the same output as
// one write: the secret is masked wherever the boundaries fall.
func TestMaskerAcrossWriteBoundaries(t *testing.T) {
	secrets := [][]byte{[]byte("s3cr€t-\nvalue"), []byte("`tick`'\"%"), []byte("s3")}
	in := "a s3cr€t-\nvalue b `tick`'\"% s3 s3cr€t- end s3cr€t-\nvalu"
	want := maskAll(NewMasker(secrets), in, nil)
	if strings.Contains(want, "value b") || strings.Contains(want, "tick") {
		t.Fatalf("secret not masked in one write: %q", want)
	}
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			if got := maskAll(NewMasker(secrets), in, []int{i, j - i}); got != want {
				t.Fatalf("writes split at %d,%d: %q, want %q", i, j, got, want)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var chunks []int
		for range 10 {
			chunks = append(chunks, r.IntN(5))
		}
		if got := maskAll(NewMasker(secrets), in, chunks); got != want {
			t.Fatalf("writes %v: %q, want %q", chunks, got, want)
		}
	}
}

// Only what could still be a secret is held; the rest goes out at once.
func TestMaskerHoldsOnlyAPossiblePrefix(t *testing.T) {
	m := NewMasker([][]byte{[]byte("password123")})
	if got := m.Write([]byte("Enter: pass")); string(got) != "Enter: " || !m.Held() {
		t.Fatalf("Write = %q held=%v, want %q held", got, m.Held(), "Enter: ")
	}
	if got := m.Write([]byte("port\n")); string(got) != "passport\n" || m.Held() {
		t.Fatalf("Write = %q held=%v", got, m.Held())
	}
	m.Write([]byte("x passw"))
	if got := m.Flush(); string(got) != "passw" {
		t.Fatalf("Flush = %q", got)
	}
}

func FuzzMasker(f *testing.F) {
	f.Add([]byte("secret"), []byte("xx secret yy"), uint8(3))
	f.Add([]byte("a\nbbbbbbbb"), []byte("a\nbbbbbbbb bbbbbbbb"), uint8(1))
	f.Fuzz(func(t *testing.T, secret, in []byte, split uint8) {
		m := NewMasker([][]byte{secret})
		n := int(split) % (len(in) + 1)
		out := append(m.Write(in[:n]), m.Write(in[n:])...)
		out = append(out, m.Flush()...)
		one := NewMasker([][]byte{secret})
		whole := append(one.Write(in), one.Flush()...)
		if !bytes.Equal(out, whole) {
			t.Fatalf("split at %d: %q, whole: %q", n, out, whole)
		}
		// The marker itself may combine with the next byte into the
		// secret (">" then "1" for secret ">1"): look between markers.
		if bare := bytes.ReplaceAll(out, []byte(Concealed), []byte{0}); len(secret) > 0 && bytes.IndexByte(secret, 0) < 0 && bytes.Contains(bare, secret) {
			t.Fatalf("secret %q still in output %q", secret, out)
		}
	})
}

// BenchmarkMasker is CMD output (log-like text) through the masker with
// ten 40-byte secrets, in pipe-sized writes.
func BenchmarkMasker(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var secrets [][]byte
	for range 10 {
		s := make([]byte, 40)
		for i := range s {
			s[i] = byte('a' + r.IntN(26))
		}
		secrets = append(secrets, s)
	}
	var text []byte
	for len(text) < 1<<20 {
		text = append(text, "2026-05-04T10:32:55Z level=info msg=\"request served\" path=/api/v1/items status=200\n"...)
		if r.IntN(50) == 0 {
			text = append(text, secrets[r.IntN(10)]...)
		}
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		m := NewMasker(secrets)
		for off := 0; off < len(text); off += 32 << 10 {
			m.Write(text[off:min(off+32<<10, len(text))])
		}
		m.Flush()
	}
}
