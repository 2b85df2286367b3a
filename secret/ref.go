package secret

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RefPrefix starts every secret reference.
const RefPrefix = "op://"

// maxRefLen bounds a reference before it is parsed or sent anywhere; a
// real one is well under a hundred bytes.
const maxRefLen = 1024

// Ref is a parsed secret reference, as 1Password documents its syntax:
//
//	op://<vault>/<item>/[<section>/]<field>[?attribute=<attr>][&ssh-format=openssh]
//
// Each name may be the vault's, item's, section's or field's name or its
// unique ID; a field may also be a file attachment's name. Names hold
// letters, digits, '-', '_', '.' and spaces; anything else (a '/' above
// all) must be written as the ID.
type Ref struct {
	Vault, Item, Section, Field string
	// Attribute is the ?attribute= (or ?attr=) query: "" for the value,
	// else one of the names in refAttributes.
	Attribute string
	// SSHFormat is ?ssh-format=: "" or "openssh".
	SSHFormat string
}

// refAttributes are the query attributes op accepts: a field's type,
// value, id, purpose and otp (the current one-time password of a TOTP
// field), and a file attachment's type, content, size, id and name.
var refAttributes = []string{"type", "value", "id", "purpose", "otp", "content", "size", "name"}

// RefError is a reference that is not one. References are not secret, so
// the message quotes it.
type RefError struct {
	Ref    string
	Reason string
}

func (e *RefError) Error() string {
	return fmt.Sprintf("invalid secret reference %s: %s", quoteRef(e.Ref), e.Reason)
}

// HintText is the fix fail() prints on the hint line.
func (e *RefError) HintText() string {
	return "write it as op://vault/item/[section/]field (names of letters, digits, '-', '_', '.' and spaces; use an ID for any other name), optionally ?attribute=otp"
}

// quoteRef quotes a reference for a message, shortened if it is long.
func quoteRef(s string) string {
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// IsRef reports whether s is meant as a secret reference (starts with
// op://), valid or not.
func IsRef(s string) bool { return strings.HasPrefix(s, RefPrefix) }

// ParseRef parses and validates a secret reference.
func ParseRef(s string) (Ref, error) {
	bad := func(format string, a ...any) (Ref, error) {
		return Ref{}, &RefError{Ref: s, Reason: fmt.Sprintf(format, a...)}
	}
	if len(s) > maxRefLen {
		return bad("longer than %d bytes", maxRefLen)
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8")
	}
	rest, ok := strings.CutPrefix(s, RefPrefix)
	if !ok {
		return bad("does not start with %s", RefPrefix)
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	parts := strings.Split(path, "/")
	var r Ref
	switch len(parts) {
	case 3:
		r = Ref{Vault: parts[0], Item: parts[1], Field: parts[2]}
	case 4:
		r = Ref{Vault: parts[0], Item: parts[1], Section: parts[2], Field: parts[3]}
	default:
		if len(parts) < 3 {
			return bad("has %d of the vault, item and field parts", len(parts))
		}
		return bad("has %d parts: at most vault/item/section/field (a name with '/' in it must be written as its ID)", len(parts))
	}
	for i, p := range parts {
		what := [...]string{"vault", "item", "section", "field"}[i]
		if i == len(parts)-1 {
			what = "field"
		}
		if strings.TrimSpace(p) == "" {
			return bad("the %s name is empty", what)
		}
		for _, c := range p {
			if !refNameRune(c) {
				return bad("the %s name %q holds %q: names hold letters, digits, '-', '_', '.' and spaces; use the %s's ID instead", what, p, c, what)
			}
		}
	}
	if hasQuery {
		if query == "" {
			return bad("empty query after '?'")
		}
		seen := map[string]bool{}
		for _, kv := range strings.Split(query, "&") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || v == "" {
				return bad("query %q is not name=value", kv)
			}
			k = strings.ToLower(k)
			if k == "attr" {
				k = "attribute"
			}
			if seen[k] {
				return bad("query %q given twice", k)
			}
			seen[k] = true
			switch k {
			case "attribute":
				a := strings.ToLower(v)
				if !slices.Contains(refAttributes, a) {
					return bad("unknown attribute %q: one of %s", v, strings.Join(refAttributes, ", "))
				}
				r.Attribute = a
			case "ssh-format":
				if strings.ToLower(v) != "openssh" {
					return bad("unknown ssh-format %q: only openssh", v)
				}
				r.SSHFormat = "openssh"
			default:
				return bad("unknown query %q: attribute (or attr) and ssh-format are known", k)
			}
		}
	}
	return r, nil
}

// refNameRune is a character 1Password's reference syntax allows in a
// name. 1Password lists ASCII letters and digits; letters and digits of
// other scripts are allowed too, as names in any language are.
func refNameRune(c rune) bool {
	switch {
	case c == '-', c == '_', c == '.', c == ' ':
		return true
	case c < utf8.RuneSelf:
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.IsMark(c)
}

// String is the reference in its canonical spelling (query names
// lowercase, attr spelled attribute). ParseRef(r.String()) == r.
func (r Ref) String() string {
	var b strings.Builder
	b.WriteString(RefPrefix)
	b.WriteString(r.Vault)
	b.WriteByte('/')
	b.WriteString(r.Item)
	b.WriteByte('/')
	if r.Section != "" {
		b.WriteString(r.Section)
		b.WriteByte('/')
	}
	b.WriteString(r.Field)
	sep := byte('?')
	if r.Attribute != "" {
		b.WriteByte(sep)
		b.WriteString("attribute=" + r.Attribute)
		sep = '&'
	}
	if r.SSHFormat != "" {
		b.WriteByte(sep)
		b.WriteString("ssh-format=" + r.SSHFormat)
	}
	return b.String()
}

// ValidateRefs parses every reference and returns the first error, or
// nil when all are valid.
func ValidateRefs(refs []string) error {
	for _, s := range refs {
		if _, err := ParseRef(s); err != nil {
			return err
		}
	}
	return nil
}
