package secret

import (
	"bytes"
	"slices"
)

// Concealed is what a masked secret is replaced with, as op run prints it.
const Concealed = "<concealed by 1Password>"

// minLineMask is the shortest line of a multi-line secret that is also
// masked on its own: a program that prints a key line by line (a logger
// prefixing each line) shows no line of it, while a short line such as
// "}" of a JSON secret does not conceal every brace in the output.
const minLineMask = 6

// Masker replaces every occurrence of a set of secrets in a byte stream
// with Concealed, across write boundaries: a secret split over two
// writes is still masked, because the tail of a write that could be the
// start of a secret is held back until the next write shows whether it
// is. Flush releases what is held (the caller does so when the stream
// has been idle for a moment, so a prompt that happens to end in the
// first bytes of a secret is not held back forever).
//
// Matching is leftmost-longest: at each position the longest secret that
// matches wins, and a position that could still become a longer match is
// held, not decided.
type Masker struct {
	pats    [][]byte      // longest first
	byFirst [256][][]byte // the patterns by their first byte, longest first
	first   [256]bool
	maxLen  int
	held    []byte
}

// NewMasker masks values; empty values are ignored. A value with more
// than one line is also masked line by line (lines of at least
// minLineMask bytes, without their \r).
func NewMasker(values [][]byte) *Masker {
	m := &Masker{}
	seen := map[string]bool{}
	add := func(p []byte) {
		if len(p) == 0 || seen[string(p)] {
			return
		}
		seen[string(p)] = true
		m.pats = append(m.pats, bytes.Clone(p))
		m.first[p[0]] = true
	}
	for _, v := range values {
		add(v)
		if bytes.IndexByte(v, '\n') >= 0 {
			for line := range bytes.SplitSeq(v, []byte("\n")) {
				line = bytes.TrimSuffix(line, []byte("\r"))
				if len(line) >= minLineMask {
					add(line)
				}
			}
		}
	}
	slices.SortStableFunc(m.pats, func(a, b []byte) int { return len(b) - len(a) })
	for _, p := range m.pats {
		m.byFirst[p[0]] = append(m.byFirst[p[0]], p)
		m.maxLen = max(m.maxLen, len(p))
	}
	return m
}

// Empty reports whether there is nothing to mask.
func (m *Masker) Empty() bool { return len(m.pats) == 0 }

// Held reports whether bytes are held back waiting for the next write.
func (m *Masker) Held() bool { return len(m.held) > 0 }

// Write takes the next bytes of the stream and returns what can be
// output now, masked.
func (m *Masker) Write(p []byte) []byte {
	buf := append(m.held, p...)
	out, rest := m.scan(buf, false)
	m.held = append([]byte(nil), rest...)
	return out
}

// Flush returns the held bytes, masked as far as they go: at the end of
// the stream, or after the stream was idle.
func (m *Masker) Flush() []byte {
	out, _ := m.scan(m.held, true)
	m.held = nil
	return out
}

func (m *Masker) scan(buf []byte, final bool) (out, rest []byte) {
	out = make([]byte, 0, len(buf))
	i := 0
	for i < len(buf) {
		if !m.first[buf[i]] {
			// Copy the run of bytes no secret starts with.
			j := i + 1
			for j < len(buf) && !m.first[buf[j]] {
				j++
			}
			out = append(out, buf[i:j]...)
			i = j
			continue
		}
		tail := buf[i:]
		cands := m.byFirst[buf[i]]
		if !final && len(tail) < m.maxLen && couldGrow(cands, tail) {
			return out, tail
		}
		if n := matchAt(cands, tail); n > 0 {
			out = append(out, Concealed...)
			i += n
			continue
		}
		out = append(out, buf[i])
		i++
	}
	return out, nil
}

// couldGrow reports whether tail is a proper prefix of one of pats: more
// bytes could still make it (or a longer) match here.
func couldGrow(pats [][]byte, tail []byte) bool {
	for _, p := range pats {
		if len(tail) < len(p) && bytes.HasPrefix(p, tail) {
			return true
		}
	}
	return false
}

// matchAt is the length of the longest of pats (longest first) at the
// start of b, or 0.
func matchAt(pats [][]byte, b []byte) int {
	for _, p := range pats {
		if bytes.HasPrefix(b, p) {
			return len(p)
		}
	}
	return 0
}
