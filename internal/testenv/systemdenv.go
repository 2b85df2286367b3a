package testenv

import (
	"strings"
	"unicode/utf8"
)

// ParseSystemdEnvFile is systemd's EnvironmentFile= parser,
// parse_env_file_internal in src/basic/env-file.c as in systemd's main
// branch, state for state, with load_env_file's rule that a value that is
// not UTF-8 is dropped. (Debian 12's v252 differs only for a comment line
// ending in \, which before v254 continued onto the next line.) It is the oracle where the real
// systemd cannot run (PID 1 is not systemd on the test machines);
// secret.TestEnvironmentFileRealSystemd checks it against systemd's own
// code.
func ParseSystemdEnvFile(data []byte) map[string]string {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
		commentEscape
	)
	isNL := func(c byte) bool { return c == '\n' || c == '\r' }
	isWS := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	out := map[string]string{}
	var k, v []byte
	lastKeyWS, lastValueWS := -1, -1
	push := func() {
		kk := k
		if lastKeyWS >= 0 {
			kk = kk[:lastKeyWS]
		}
		val := string(v)
		if utf8.ValidString(string(kk)) && utf8.ValidString(val) {
			out[string(kk)] = val
		}
		k, v = nil, nil
	}
	state := preKey
	for _, c := range data {
		if c == 0 {
			break // a C string ends here
		}
		switch state {
		case preKey:
			if c == '#' || c == ';' {
				state = comment
			} else if !isWS(c) {
				state = key
				lastKeyWS = -1
				k = append(k, c)
			}
		case key:
			if isNL(c) {
				state = preKey
				k = nil
			} else if c == '=' {
				state = preValue
				lastValueWS = -1
			} else {
				if !isWS(c) {
					lastKeyWS = -1
				} else if lastKeyWS < 0 {
					lastKeyWS = len(k)
				}
				k = append(k, c)
			}
		case preValue:
			if isNL(c) {
				state = preKey
				push()
			} else if c == '\'' {
				state = singleQuote
			} else if c == '"' {
				state = doubleQuote
			} else if c == '\\' {
				state = valueEscape
			} else if !isWS(c) {
				state = value
				v = append(v, c)
			}
		case value:
			if isNL(c) {
				state = preKey
				if lastValueWS >= 0 {
					v = v[:lastValueWS]
				}
				push()
			} else if c == '\\' {
				state = valueEscape
				lastValueWS = -1
			} else {
				if !isWS(c) {
					lastValueWS = -1
				} else if lastValueWS < 0 {
					lastValueWS = len(v)
				}
				v = append(v, c)
			}
		case valueEscape:
			state = value
			if !isNL(c) {
				v = append(v, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v = append(v, c)
			}
		case doubleQuote:
			if c == '"' {
				state = preValue
			} else if c == '\\' {
				state = doubleQuoteEscape
			} else {
				v = append(v, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			if strings.IndexByte("\"\\`$", c) >= 0 {
				v = append(v, c)
			} else if c != '\n' {
				v = append(v, '\\', c)
			}
		case comment:
			if c == '\\' {
				state = commentEscape
			} else if isNL(c) {
				state = preKey
			}
		case commentEscape:
			if isNL(c) {
				state = preKey
			} else {
				state = comment
			}
		}
	}
	switch state {
	case preValue, value, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape:
		if state == value && lastValueWS >= 0 {
			v = v[:lastValueWS]
		}
		push()
	}
	return out
}
