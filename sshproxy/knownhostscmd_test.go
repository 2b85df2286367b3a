package sshproxy

import (
	"slices"
	"strings"
	"testing"
)

// argvSplit splits as OpenSSH's argv_split: blanks separate, quotes group,
// a backslash escapes a quote, a backslash or an unquoted space.
func TestArgvSplit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  /bin/cmd  %h\t%p ", []string{"/bin/cmd", "%h", "%p"}},
		{`/c "two words" 'x y'`, []string{"/c", "two words", "x y"}},
		{`/c a\ b \"q\" \\ \n`, []string{"/c", "a b", `"q"`, `\`, `\n`}},
		{`/c "it's" 'say "hi"'`, []string{"/c", "it's", `say "hi"`}},
		{`/c a"b c"d`, []string{"/c", "ab cd"}},
		{`/c ""`, []string{"/c", ""}},
	} {
		got, err := argvSplit(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("argvSplit(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`/c "open`, `/c 'open`} {
		if _, err := argvSplit(bad); err == nil {
			t.Errorf("argvSplit(%q): want an unterminated-quote error", bad)
		}
	}
}

// argvSplit never panics, and words without quotes, backslashes or blanks
// come back as they were joined.
func FuzzArgvSplit(f *testing.F) {
	for _, s := range []string{"/bin/x %h", `"a b" 'c'`, `\`, `a\`, `"\"`, "\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argvSplit(s)
		words := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t\"'\\", r) })
		got, err := argvSplit(strings.Join(words, " "))
		if err != nil || len(words) > 0 && !slices.Equal(got, words) {
			t.Fatalf("plain words %q split as %q, %v", words, got, err)
		}
	})
}
