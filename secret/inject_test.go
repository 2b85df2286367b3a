package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseTemplate(t *testing.T) {
	vars := env(map[string]string{"VAULT": "prod", "EMPTY": "", "ENV": "staging"})
	cases := []struct {
		name, src string
		refs      []string
		out       string // with each reference rendered as <ref>
	}{
		{"enclosed", "user: {{ op://prod/db/username }}\npass: {{op://prod/db/password}}\n",
			[]string{"op://prod/db/username", "op://prod/db/password"},
			"user: <op://prod/db/username>\npass: <op://prod/db/password>\n"},
		{"enclosed with spaces in names", "t={{ op://SA - production/GitHub CLI Token/credential }};",
			[]string{"op://SA - production/GitHub CLI Token/credential"}, "t=<op://SA - production/GitHub CLI Token/credential>;"},
		{"bare", "a=op://test-app/database/password b=\"op://d3v/stripe.keys/s3ct10n/public_key\"\n",
			[]string{"op://test-app/database/password", "op://d3v/stripe.keys/s3ct10n/public_key"},
			"a=<op://test-app/database/password> b=\"<op://d3v/stripe.keys/s3ct10n/public_key>\"\n"},
		{"bare with attribute, to a space", "code: op://dev/GitHub/otp?attribute=otp now",
			[]string{"op://dev/GitHub/otp?attribute=otp"}, "code: <op://dev/GitHub/otp?attribute=otp> now"},
		{"not after a word character", "xop://a/b/c -op://a/b/c +op://a/b/c \\op://a/b/c .op://a/b/c",
			nil, "xop://a/b/c -op://a/b/c +op://a/b/c \\op://a/b/c .op://a/b/c"},
		{"quoted escape", `{{ "{{ test op://prod/docker/password }}" }} and {{"say \"hi\" \\ there"}}`,
			nil, `{{ test op://prod/docker/password }} and say "hi" \ there`},
		{"braces that are text", "{{ not a ref }} {{ {{ }} {{", nil, "{{ not a ref }} {{ {{ }} {{"},
		{"variables in references", "op://$VAULT/docker/password {{ op://${ VAULT }/x/y }} op://${MISSING:-dev}/a/b {{ op://SA - ${ENV}/a/b }}",
			[]string{"op://prod/docker/password", "op://prod/x/y", "op://dev/a/b", "op://SA - staging/a/b"},
			"<op://prod/docker/password> <op://prod/x/y> <op://dev/a/b> <op://SA - staging/a/b>"},
		{"empty variable takes the default", "op://${EMPTY:-dev}/a/b", []string{"op://dev/a/b"}, "<op://dev/a/b>"},
		{"no expansion outside references", "home=$HOME ${VAULT} `id` $(id) %s\n", nil, "home=$HOME ${VAULT} `id` $(id) %s\n"},
		{"duplicates resolved once", "{{ op://a/b/c }} op://a/b/c", []string{"op://a/b/c"}, "<op://a/b/c> <op://a/b/c>"},
		{"sentence end stays in a bare reference, as op", "see op://a/b/c.", []string{"op://a/b/c."}, "see <op://a/b/c.>"},
		{"no trailing newline kept", "{{ op://a/b/c }}", []string{"op://a/b/c"}, "<op://a/b/c>"},
	}
	for _, c := range cases {
		tpl, err := ParseTemplate([]byte(c.src), vars)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := tpl.Refs(); fmt.Sprint(got) != fmt.Sprint(c.refs) {
			t.Errorf("%s: refs %q, want %q", c.name, got, c.refs)
		}
		vals := map[string][]byte{}
		for _, r := range tpl.Refs() {
			vals[r] = []byte("<" + r + ">")
		}
		out, err := tpl.Render(vals)
		if err != nil || string(out) != c.out {
			t.Errorf("%s: rendered %q, %v\n want %q", c.name, out, err, c.out)
		}
	}
}

func TestParseTemplateErrors(t *testing.T) {
	vars := env(map[string]string{"BAD": "x/$(touch y)"})
	cases := []struct{ src, want string }{
		{"a\nb {{ op://a/b }}", "template line 2: invalid secret reference \"op://a/b\""},
		{"a\n\nop://a", "template line 3: invalid secret reference"},
		{"op://$NOPE/a/b", "variable NOPE in \"op://$NOPE/a/b\" is not set"},
		{"{{ op://${1X}/a/b }}", "bad variable name \"1X\""},
		{"op://$BAD/a/b", "holds '$'"}, // a variable cannot smuggle a metacharacter in
		{"{{ op://a/b/c?attribute=colour }}", "unknown attribute"},
	}
	for _, c := range cases {
		_, err := ParseTemplate([]byte(c.src), vars)
		var te *TemplateError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.src, err, c.want)
		}
	}
}

type mapBackend struct {
	vals  map[string][]byte
	calls int
}

func (m *mapBackend) Name() string { return "map" }
func (m *mapBackend) ResolveAll(_ context.Context, refs []string) ([][]byte, error) {
	m.calls++
	out := make([][]byte, len(refs))
	for i, r := range refs {
		v, ok := m.vals[r]
		if !ok {
			return nil, &Error{Kind: ErrNotFound, Refs: []string{r}, Msg: "resolving " + quoteRef(r) + ": no such item"}
		}
		out[i] = bytes.Clone(v)
	}
	return out, nil
}

func TestInjectOneBatch(t *testing.T) {
	b := &mapBackend{vals: map[string][]byte{"op://a/b/c": []byte("$(x)\n`y`"), "op://a/b/d": []byte("ü%")}}
	tpl, _ := ParseTemplate([]byte("1={{ op://a/b/c }}\n2=op://a/b/d\n3=op://a/b/c\n"), env(nil))
	out, err := Inject(context.Background(), b, tpl)
	if err != nil || string(out) != "1=$(x)\n`y`\n2=ü%\n3=$(x)\n`y`\n" || b.calls != 1 {
		t.Errorf("got %q, %v after %d calls", out, err, b.calls)
	}
	tpl, _ = ParseTemplate([]byte("{{ op://a/b/c }} {{ op://a/b/missing }}"), env(nil))
	out, err = Inject(context.Background(), b, tpl)
	if out != nil || !errors.Is(err, ErrNotFound) {
		t.Errorf("unresolved: %q, %v", out, err)
	}
	// No reference: the backend is not asked.
	tpl, _ = ParseTemplate([]byte("plain $HOME"), env(nil))
	b.calls = 0
	if out, err = Inject(context.Background(), b, tpl); string(out) != "plain $HOME" || err != nil || b.calls != 0 {
		t.Errorf("no refs: %q, %v, %d calls", out, err, b.calls)
	}
}

// FuzzParseTemplate: nothing panics; text without "{{" or "op://" comes out
// unchanged; every reference found is valid and rendering puts exactly its
// value where it stood.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"", "a {{ op://a/b/c }} b", "op://a/b/c?attribute=otp", `{{ "x \" }}" }}`,
		"{{ op://${V:-x}/b/c }}", "op://$V/b/c", "{{", "{{ \"", "op://", "x\nop://a/b/c\n{{op://a/b/c}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		tpl, err := ParseTemplate(src, env(map[string]string{"V": "vault"}))
		if err != nil {
			return
		}
		if !bytes.Contains(src, []byte("{{")) && !bytes.Contains(src, []byte("op://")) {
			out, err := tpl.Render(nil)
			if err != nil || !bytes.Equal(out, src) {
				t.Fatalf("plain text changed: %q → %q, %v", src, out, err)
			}
		}
		vals := map[string][]byte{}
		for _, r := range tpl.Refs() {
			if _, err := ParseRef(r); err != nil {
				t.Fatalf("invalid reference %q accepted: %v", r, err)
			}
			vals[r] = []byte{}
		}
		if _, err := tpl.Render(vals); err != nil {
			t.Fatal(err)
		}
	})
}
