package config

import "strings"

// The lexer follows OpenSSH 9.2's misc.c: strdelim() takes the keyword off
// the front of a line (so "Key=value", "Key = value" and "Key value" are one
// thing) and argv_split() cuts the rest into arguments with sh-like quoting.
// Getting these exactly right matters more than it looks: a '#' only starts
// a comment at the start of an argument, quotes may open mid-argument, and
// keywords that take a command (ProxyCommand, RemoteCommand, …) keep the raw
// rest of the line, comment and all.

const whitespace = " \t\r\n"

// strdelim returns the next token of s and the remainder. ok is false for
// an unterminated double quote. rest is nil-like (done=true) when s had no
// delimiter at all, as strdelim sets *s to NULL.
func strdelim(s string) (tok, rest string, done, ok bool) {
	i := strings.IndexAny(s, whitespace+"\"=")
	if i < 0 {
		return s, "", true, true
	}
	if s[i] == '"' {
		// The quote is removed and the token runs to the next quote.
		t := s[:i] + s[i+1:]
		j := strings.IndexByte(t[i:], '"')
		if j < 0 {
			return "", "", true, false
		}
		j += i
		tok = t[:j]
		rest = t[j+1:]
		rest = strings.TrimLeft(rest, whitespace)
		return tok, rest, false, true
	}
	wspace := s[i] == '='
	tok = s[:i]
	rest = strings.TrimLeft(s[i+1:], whitespace)
	if !wspace && strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], whitespace)
	}
	return tok, rest, false, true
}

// argvSplit splits s into arguments as OpenSSH's argv_split(s, …, 1) does:
// blanks separate arguments, single and double quotes group (and are
// removed), a backslash escapes a quote, a backslash, or (outside quotes) a
// space, and a '#' at the start of an argument ends the line. ok is false
// for an unterminated quote.
func argvSplit(s string) (args []string, ok bool) {
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var quote byte
		var b strings.Builder
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' {
				if i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' ||
					(quote == 0 && s[i+1] == ' ')) {
					i++
					b.WriteByte(s[i])
				} else {
					b.WriteByte(c)
				}
			} else if quote == 0 && (c == ' ' || c == '\t') {
				break
			} else if quote == 0 && (c == '"' || c == '\'') {
				quote = c
			} else if quote != 0 && c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		}
		args = append(args, b.String())
		if i >= len(s) {
			if quote != 0 {
				return nil, false
			}
			break
		}
	}
	return args, true
}

// splitLine takes one configuration line apart as
// process_config_line_depth does. It returns the lowercased keyword, the
// raw remainder (for command keywords), and whether the line is blank or a
// comment.
func splitLine(line string) (keyword, rest string, blank, hasRest, ok bool) {
	// Strip trailing whitespace; \f is allowed at the end only. Like
	// OpenSSH, the first byte is never stripped.
	n := len(line)
	for n > 1 && strings.IndexByte(whitespace+"\f", line[n-1]) >= 0 {
		n--
	}
	line = line[:n]
	if line == "" {
		return "", "", true, false, true
	}
	kw, r, done, ok := strdelim(line)
	if !ok {
		return "", "", true, false, true // strdelim returned NULL: ignored
	}
	if kw == "" {
		if done {
			return "", "", true, false, true
		}
		kw, r, done, ok = strdelim(r)
		if !ok {
			return "", "", true, false, true
		}
	}
	if kw == "" || kw[0] == '\n' || kw[0] == '#' {
		return "", "", true, false, true
	}
	keyword = asciiLower(kw)
	if done {
		return keyword, "", false, false, true
	}
	r = strings.TrimLeft(r, whitespace)
	return keyword, r, false, r != "", true
}

// asciiLower lowercases ASCII letters only, as C's tolower in the C locale.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
