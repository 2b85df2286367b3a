package config

import "strings"

// matchPattern reports whether s matches the glob pattern, where '*' is any
// run of bytes and '?' exactly one byte, compared case-sensitively, as
// OpenSSH's match_pattern. OpenSSH recurses and can take exponential time on
// patterns like "*a*a*a*b"; this is the usual linear backtracking form with
// the same answers.
func matchPattern(s, pattern string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]) && pattern[pi] != '*':
			si++
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star = pi
			mark = si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// matchPatternList matches s against a comma-separated list of patterns,
// each optionally negated with '!'. It returns 1 for a positive match, -1
// when a negated pattern matches (which wins), 0 otherwise, as OpenSSH's
// match_pattern_list. With lower, the patterns are lowercased first.
func matchPatternList(s, list string, lower bool) int {
	got := 0
	for i := 0; i < len(list); {
		negated := false
		if list[i] == '!' {
			negated = true
			i++
		}
		j := i
		for j < len(list) && list[j] != ',' {
			j++
		}
		sub := list[i:j]
		// OpenSSH copies each subpattern into a 1024-byte buffer and gives
		// up (no match at all) when one is longer.
		if len(sub) >= 1023 {
			return 0
		}
		if j < len(list) {
			j++
		}
		i = j
		if lower {
			sub = asciiLower(sub)
		}
		if matchPattern(s, sub) {
			if negated {
				return -1
			}
			got = 1
		}
	}
	return got
}

// matchHostname is match_hostname: the host is lowercased and the patterns
// are matched case-insensitively.
func matchHostname(host, list string) int {
	return matchPatternList(asciiLower(host), list, true)
}

// hasPattern reports whether s contains glob characters.
func hasPattern(s string) bool { return strings.ContainsAny(s, "*?") }
