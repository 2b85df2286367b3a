package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// EnvVar is one NAME=value assignment.
type EnvVar struct {
	Name  string
	Value string
}

// maxEnvFile bounds an env file read by `secret run --env-file`.
const maxEnvFile = 1 << 20

// ValidEnvName reports whether name is a variable name sh and systemd
// both accept: a letter or _, then letters, digits and _.
func ValidEnvName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ReadEnvFile reads an env file as `op run --env-file` does (see
// ParseEnvFile), at most maxEnvFile bytes.
func ReadEnvFile(path string, lookup func(string) (string, bool)) ([]EnvVar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFile+1))
	if err != nil {
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	if len(data) > maxEnvFile {
		return nil, fmt.Errorf("env file %s: larger than %d bytes", path, maxEnvFile)
	}
	return ParseEnvFile(path, data, lookup)
}

// ParseEnvFile parses the .env syntax op run documents:
//
//   - KEY=VALUE statements, one a line; blank lines and lines starting
//     with # are skipped, an optional "export " before KEY is ignored;
//   - an unquoted VALUE ends at the end of the line or at a # after
//     whitespace, and is trimmed;
//   - 'single quotes' keep every byte as written, newlines included;
//   - "double quotes" may span lines and understand \n \r \t \\ \" \$;
//   - $NAME and ${NAME} in unquoted and double-quoted values are
//     replaced by the variable's value: defined earlier in the file (or in
//     an earlier file, through lookup), else from the environment (lookup),
//     else empty.
//
// Errors name the file and line, never a value.
func ParseEnvFile(name string, data []byte, lookup func(string) (string, bool)) ([]EnvVar, error) {
	var out []EnvVar
	local := map[string]string{}
	get := func(k string) string {
		if v, ok := local[k]; ok {
			return v
		}
		if lookup != nil {
			if v, ok := lookup(k); ok {
				return v
			}
		}
		return ""
	}
	all := string(data)
	pos := 0
	lineAt := func(p int) int { return 1 + strings.Count(all[:p], "\n") }
	bad := func(p int, why string) error { return fmt.Errorf("env file %s:%d: %s", name, lineAt(p), why) }
	for pos < len(all) {
		s := all[pos:]
		nl := strings.IndexByte(s, '\n')
		raw := s
		if nl >= 0 {
			raw = s[:nl]
		}
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || trimmed[0] == '#' {
			if nl < 0 {
				break
			}
			pos += nl + 1
			continue
		}
		stmt := strings.TrimLeft(s, " \t")
		if rest, ok := strings.CutPrefix(stmt, "export"); ok && len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			stmt = strings.TrimLeft(rest, " \t")
		}
		eq := strings.IndexByte(stmt, '=')
		if eq < 0 || strings.IndexByte(stmt[:eq], '\n') >= 0 {
			return nil, bad(pos, "not a KEY=VALUE line")
		}
		key := strings.TrimRight(stmt[:eq], " \t")
		if !ValidEnvName(key) {
			return nil, bad(pos, fmt.Sprintf("%q is not a variable name", key))
		}
		v := strings.TrimLeft(stmt[eq+1:], " \t")
		var val string
		switch {
		case strings.HasPrefix(v, "'"):
			end := strings.IndexByte(v[1:], '\'')
			if end < 0 {
				return nil, bad(pos, "unterminated single quote")
			}
			val = v[1 : 1+end]
			v = v[2+end:]
		case strings.HasPrefix(v, `"`):
			var b strings.Builder
			i := 1
			closed := false
			for i < len(v) && !closed {
				c := v[i]
				switch {
				case c == '"':
					closed = true
					i++
				case c == '\\' && i+1 < len(v):
					switch e := v[i+1]; e {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					case '\\', '"', '$':
						b.WriteByte(e)
					default:
						b.WriteByte('\\')
						b.WriteByte(e)
					}
					i += 2
				case c == '$':
					n, used := expandAt(v[i:], get)
					b.WriteString(n)
					i += used
				default:
					b.WriteByte(c)
					i++
				}
			}
			if !closed {
				return nil, bad(pos, "unterminated double quote")
			}
			val = b.String()
			v = v[i:]
		default:
			end := strings.IndexByte(v, '\n')
			if end < 0 {
				end = len(v)
			}
			text := strings.TrimSuffix(v[:end], "\r")
			for i := 1; i < len(text); i++ {
				if text[i] == '#' && (text[i-1] == ' ' || text[i-1] == '\t') {
					text = text[:i]
					break
				}
			}
			val = expand(strings.TrimRight(text, " \t"), get)
			v = v[end:]
		}
		// After a quoted value: only blanks or a comment to the end of
		// the line.
		tail, _, more := strings.Cut(v, "\n")
		if t := strings.TrimSpace(tail); t != "" && t[0] != '#' {
			return nil, bad(pos, "text after the closing quote")
		}
		local[key] = val
		out = append(out, EnvVar{key, val})
		if !more {
			break
		}
		pos = len(all) - len(v) + len(tail) + 1
	}
	return out, nil
}

func expand(s string, get func(string) string) string {
	if strings.IndexByte(s, '$') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		n, used := expandAt(s[i:], get)
		b.WriteString(n)
		i += used
	}
	return b.String()
}

// expandAt expands the $NAME or ${NAME} at the start of s: the value and
// the bytes used. A $ that starts neither is itself.
func expandAt(s string, get func(string) string) (string, int) {
	if strings.HasPrefix(s, "${") {
		if end := strings.IndexByte(s, '}'); end > 2 && ValidEnvName(s[2:end]) {
			return get(s[2:end]), end + 1
		}
		return "$", 1
	}
	n := 1
	for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || n > 1 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	if n == 1 {
		return "$", 1
	}
	return get(s[1:n]), n
}

// errNotEnvValue is why a value cannot go into an EnvironmentFile.
var errNotEnvValue = errors.New("value is not valid UTF-8 text (systemd ignores such a line) or holds a NUL byte")

// FormatEnvironmentFile writes vars as lines that systemd's
// EnvironmentFile= parser and a POSIX shell's `. FILE` both read back as
// the exact bytes: NAME="value" with \ before " \ ` and $, the only
// characters either gives a meaning inside double quotes (systemd's
// SHELL_NEED_ESCAPE is the same set; a newline stays a newline in both).
// A value must be valid UTF-8 without NUL: systemd drops a line whose
// value is not UTF-8, and no environment holds a NUL. Errors name the
// variable, never the value.
func FormatEnvironmentFile(vars []EnvVar) ([]byte, error) {
	var b bytes.Buffer
	seen := map[string]bool{}
	for _, v := range vars {
		if !ValidEnvName(v.Name) {
			return nil, fmt.Errorf("%q is not a variable name", v.Name)
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("%s is given twice", v.Name)
		}
		seen[v.Name] = true
		if !utf8.ValidString(v.Value) || strings.IndexByte(v.Value, 0) >= 0 {
			return nil, fmt.Errorf("%s: %w", v.Name, errNotEnvValue)
		}
		b.WriteString(v.Name)
		b.WriteString(`="`)
		for i := 0; i < len(v.Value); i++ {
			switch c := v.Value[i]; c {
			case '"', '\\', '`', '$':
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteString("\"\n")
	}
	return b.Bytes(), nil
}
