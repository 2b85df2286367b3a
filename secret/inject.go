package secret

import (
	"bytes"
	"context"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxTemplate bounds a template read for inject.
const MaxTemplate = 16 << 20

// Template is an `op inject` template, parsed: literal text and secret
// references, in order. The syntax is 1Password's:
//
//   - {{ op://vault/item/field }}: an enclosed reference, spaces allowed
//     around it (and inside its names, as in "SA - production");
//   - op://vault/item/field: a bare reference, not preceded by a letter,
//     digit, '-', '+', '\' or '.', running to the first character outside
//     letters, digits, '-', '_', '.', '?', '/', '=' and '&';
//   - {{ "text" }}: text output as it is (\" is a quote, \\ a backslash),
//     to write a literal {{ or op://;
//   - $VAR, ${VAR} and ${VAR:-default} inside a reference: the variable's
//     value (the default when it is unset or empty). Names are letters,
//     digits and '_', not starting with a digit. Outside references
//     nothing is expanded: a template's own $HOME stays $HOME.
//
// A {{ … }} that is neither a reference nor a quoted string is text.
type Template struct {
	parts []tplPart
}

type tplPart struct {
	lit []byte // literal text, when ref is ""
	ref string // the reference, variables expanded
}

// TemplateError is a template that cannot be used: where, and why.
type TemplateError struct {
	Line int
	Err  error
}

func (e *TemplateError) Error() string { return fmt.Sprintf("template line %d: %v", e.Line, e.Err) }
func (e *TemplateError) Unwrap() error { return e.Err }

// HintText passes a wrapped reference error's fix through.
func (e *TemplateError) HintText() string {
	if h, ok := e.Err.(interface{ HintText() string }); ok {
		return h.HintText()
	}
	return ""
}

// ParseTemplate parses src. lookup returns an environment variable for
// $VAR expansion inside references (ok false when unset). Every reference
// is validated: a malformed one, or one naming an unset variable without a
// default, is an error here, before anything is resolved.
func ParseTemplate(src []byte, lookup func(name string) (string, bool)) (*Template, error) {
	if len(src) > MaxTemplate {
		return nil, fmt.Errorf("template longer than %d bytes", MaxTemplate)
	}
	t := &Template{}
	line := 1
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.parts = append(t.parts, tplPart{lit: lit})
			lit = nil
		}
	}
	addRef := func(raw string, at int) error {
		ref, err := expandVars(raw, lookup)
		if err == nil {
			_, err = ParseRef(ref)
		}
		if err != nil {
			return &TemplateError{Line: at, Err: err}
		}
		flush()
		t.parts = append(t.parts, tplPart{ref: ref})
		return nil
	}
	for i := 0; i < len(src); {
		if bytes.HasPrefix(src[i:], []byte("{{")) {
			if n, text, ok := quotedTag(src[i:]); ok {
				lit = append(lit, text...)
				i += n
				continue
			}
			if n, raw, ok := enclosedRef(src[i:]); ok {
				if err := addRef(raw, line); err != nil {
					return nil, err
				}
				i += n
				continue
			}
			lit = append(lit, '{', '{')
			i += 2
			continue
		}
		if bytes.HasPrefix(src[i:], []byte(RefPrefix)) && (i == 0 || !refBoundary(src[i-1])) {
			n := bareRefLen(src[i:])
			if err := addRef(string(src[i:i+n]), line); err != nil {
				return nil, err
			}
			i += n
			continue
		}
		if src[i] == '\n' {
			line++
		}
		lit = append(lit, src[i])
		i++
	}
	flush()
	return t, nil
}

// refBoundary is a byte after which op:// does not start a bare reference.
func refBoundary(c byte) bool {
	return isAlnum(c) || c == '-' || c == '+' || c == '\\' || c == '.' || c >= utf8.RuneSelf
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// bareRefLen is the length of the bare reference at the start of b.
func bareRefLen(b []byte) int {
	i := len(RefPrefix)
	for i < len(b) {
		c := b[i]
		switch {
		case isAlnum(c), c == '-', c == '_', c == '.', c == '?', c == '/', c == '=', c == '&':
			i++
		case c == '$' && i+1 < len(b) && b[i+1] == '{':
			end := bytes.IndexByte(b[i:], '}')
			if end < 0 || bytes.IndexByte(b[i:i+end], '\n') >= 0 {
				return i
			}
			i += end + 1
		case c == '$' && i+1 < len(b) && (b[i+1] == '_' || isAlnum(b[i+1])):
			i++
			for i < len(b) && (b[i] == '_' || isAlnum(b[i])) {
				i++
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
				return i
			}
			i += n
		default:
			return i
		}
	}
	return i
}

// thisLine is b up to its first newline: tags never span lines, which
// also keeps a template of many unclosed {{ linear to parse.
func thisLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// enclosedRef matches {{ op://… }} on one line at the start of b; a ${…}
// inside it may hold braces of its own.
func enclosedRef(b []byte) (n int, raw string, ok bool) {
	b = thisLine(b)
	end := -1
	for i := 2; i+1 < len(b); i++ {
		if b[i] == '$' && b[i+1] == '{' {
			k := bytes.IndexByte(b[i:], '}')
			if k < 0 {
				return 0, "", false
			}
			i += k
			continue
		}
		if b[i] == '{' && b[i+1] == '{' {
			return 0, "", false
		}
		if b[i] == '}' && b[i+1] == '}' {
			end = i
			break
		}
	}
	if end < 0 {
		return 0, "", false
	}
	inner := bytes.Trim(b[2:end], " \t")
	if !bytes.HasPrefix(inner, []byte(RefPrefix)) {
		return 0, "", false
	}
	return end + 2, string(inner), true
}

// quotedTag matches {{ "text" }} at the start of b and returns the text
// unescaped.
func quotedTag(b []byte) (n int, text []byte, ok bool) {
	b = thisLine(b)
	i := 2
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	if i >= len(b) || b[i] != '"' {
		return 0, nil, false
	}
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			if i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\') {
				text = append(text, b[i+1])
				i += 2
				continue
			}
			text = append(text, '\\')
			i++
		case '"':
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
				j++
			}
			if bytes.HasPrefix(b[j:], []byte("}}")) {
				if text == nil {
					text = []byte{}
				}
				return j + 2, text, true
			}
			return 0, nil, false
		default:
			text = append(text, b[i])
			i++
		}
	}
	return 0, nil, false
}

// expandVars expands $VAR, ${VAR} and ${VAR:-default} in a reference.
func expandVars(s string, lookup func(string) (string, bool)) (string, error) {
	if !bytes.ContainsRune([]byte(s), '$') {
		return s, nil
	}
	var out []byte
	for i := 0; i < len(s); {
		if s[i] != '$' {
			out = append(out, s[i])
			i++
			continue
		}
		var name, def string
		hasDef := false
		if i+1 < len(s) && s[i+1] == '{' {
			end := bytes.IndexByte([]byte(s[i:]), '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ in %s", quoteRef(s))
			}
			body := s[i+2 : i+end]
			if k := bytes.Index([]byte(body), []byte(":-")); k >= 0 {
				name, def, hasDef = body[:k], body[k+2:], true
			} else {
				name = body
			}
			name = string(bytes.TrimSpace([]byte(name)))
			i += end + 1
		} else {
			j := i + 1
			for j < len(s) && (s[j] == '_' || isAlnum(s[j])) {
				j++
			}
			name = s[i+1 : j]
			i = j
		}
		if !validVarName(name) {
			return "", fmt.Errorf("bad variable name %q in %s: letters, digits and '_', not starting with a digit", name, quoteRef(s))
		}
		v, ok := lookup(name)
		switch {
		case ok && v != "":
			out = append(out, v...)
		case hasDef:
			out = append(out, def...)
		case ok:
			// Set but empty, no default: empty, as the shell would.
		default:
			return "", fmt.Errorf("variable %s in %s is not set (give it a default: ${%s:-value})", name, quoteRef(s), name)
		}
	}
	return string(out), nil
}

func validVarName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '_' && !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// Refs returns the template's references in order, each once.
func (t *Template) Refs() []string {
	var refs []string
	seen := map[string]bool{}
	for _, p := range t.parts {
		if p.ref != "" && !seen[p.ref] {
			seen[p.ref] = true
			refs = append(refs, p.ref)
		}
	}
	return refs
}

// Render writes the template with each reference replaced by its value's
// bytes, as they are: nothing is quoted, escaped or interpreted.
// The output is sized once, so no copy of a value is left behind in a
// buffer that grew.
func (t *Template) Render(values map[string][]byte) ([]byte, error) {
	size := 0
	for _, p := range t.parts {
		if p.ref == "" {
			size += len(p.lit)
			continue
		}
		v, ok := values[p.ref]
		if !ok {
			return nil, fmt.Errorf("%s was not resolved", quoteRef(p.ref))
		}
		size += len(v)
	}
	out := make([]byte, 0, size)
	for _, p := range t.parts {
		if p.ref == "" {
			out = append(out, p.lit...)
		} else {
			out = append(out, values[p.ref]...)
		}
	}
	return out, nil
}

// Inject resolves every reference of t in one ResolveAll and renders it.
// On any failure it returns no output at all.
func Inject(ctx context.Context, b Backend, t *Template) ([]byte, error) {
	refs := t.Refs()
	values := map[string][]byte{}
	if len(refs) > 0 {
		vals, err := b.ResolveAll(ctx, refs)
		if err != nil {
			return nil, err
		}
		if len(vals) != len(refs) {
			wipeAll(vals)
			return nil, fmt.Errorf("%s backend answered %d values for %d references", b.Name(), len(vals), len(refs))
		}
		defer wipeAll(vals)
		for i, r := range refs {
			values[r] = vals[i]
		}
	}
	return t.Render(values)
}
