package secret

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	good := []struct {
		in   string
		want Ref
	}{
		{"op://dev/Stripe/publishable-key", Ref{Vault: "dev", Item: "Stripe", Field: "publishable-key"}},
		{"op://Management/PagerDuty/Admin/email", Ref{Vault: "Management", Item: "PagerDuty", Section: "Admin", Field: "email"}},
		{"op://SA - production/GitHub CLI Token/credential", Ref{Vault: "SA - production", Item: "GitHub CLI Token", Field: "credential"}},
		{"op://development/GitHub/Security/one-time password?attribute=otp", Ref{Vault: "development", Item: "GitHub", Section: "Security", Field: "one-time password", Attribute: "otp"}},
		{"op://dev/GitHub/otp?attr=OTP", Ref{Vault: "dev", Item: "GitHub", Field: "otp", Attribute: "otp"}},
		{"op://Private/ssh keys/ssh key/private key?ssh-format=openssh", Ref{Vault: "Private", Item: "ssh keys", Section: "ssh key", Field: "private key", SSHFormat: "openssh"}},
		{"op://prod/yj3jfj2vzsbiwqabprflnl27lm/password", Ref{Vault: "prod", Item: "yj3jfj2vzsbiwqabprflnl27lm", Field: "password"}},
		{"op://d3v/stripe.keys/s3ct10n/public_key", Ref{Vault: "d3v", Item: "stripe.keys", Section: "s3ct10n", Field: "public_key"}},
		{"op://app/db/cert.pem?attribute=content", Ref{Vault: "app", Item: "db", Field: "cert.pem", Attribute: "content"}},
		{"op://Тест/Ключ/пароль", Ref{Vault: "Тест", Item: "Ключ", Field: "пароль"}},
		{"op://a/b/c?attribute=type&ssh-format=openssh", Ref{Vault: "a", Item: "b", Field: "c", Attribute: "type", SSHFormat: "openssh"}},
	}
	for _, c := range good {
		got, err := ParseRef(c.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseRef(%q) = %+v, want %+v", c.in, got, c.want)
		}
		again, err := ParseRef(got.String())
		if err != nil || again != got {
			t.Errorf("ParseRef(%q.String() = %q) = %+v, %v", c.in, got.String(), again, err)
		}
	}
	bad := []struct{ in, why string }{
		{"", "does not start with op://"},
		{"http://a/b/c", "does not start with op://"},
		{"OP://a/b/c", "does not start with op://"},
		{"op://a/b", "has 2 of the vault"},
		{"op://a/b/c/d/e", "has 5 parts"},
		{"op://a//c", "item name is empty"},
		{"op://a/b/ ", "field name is empty"},
		{"op://h?ack/1Password!/for\"real", "has 1 of the vault"},
		{"op://{vault}/[item]/(section)/field", "vault name \"{vault}\" holds '{'"},
		{"op://a/b/c$(touch x)", "holds '$'"},
		{"op://a/b/c\nd", "holds '\\n'"},
		{"op://a/b/c?", "empty query"},
		{"op://a/b/c?attribute=colour", "unknown attribute \"colour\""},
		{"op://a/b/c?attribute", "is not name=value"},
		{"op://a/b/c?attribute=otp&attr=otp", "given twice"},
		{"op://a/b/c?ssh-format=putty", "only openssh"},
		{"op://a/b/c?format=json", "unknown query"},
		{"op://a/b/\xff", "not valid UTF-8"},
		{"op://a/b/" + strings.Repeat("x", 1100), "longer than"},
	}
	for _, c := range bad {
		_, err := ParseRef(c.in)
		var re *RefError
		if !errors.As(err, &re) {
			t.Errorf("ParseRef(%q) = %v, want a RefError", c.in, err)
			continue
		}
		if !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseRef(%q): %q does not say %q", c.in, err, c.why)
		}
		if !strings.HasPrefix(err.Error(), "invalid secret reference ") || strings.HasSuffix(err.Error(), ".") {
			t.Errorf("ParseRef(%q): %q is not in rssh's voice", c.in, err)
		}
	}
}

// FuzzParseRef: no input panics, an accepted reference survives a round
// trip through String, and nothing with a shell or template metacharacter
// is ever accepted (a value of such a reference could not be quoted safely
// in op's argv or an inject template).
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"op://a/b/c", "op://a/b/c/d?attribute=otp", "op://a/b/c?attr=otp&ssh-format=openssh",
		"op://SA - x/y z/w", "op://a/b/c?", "op://a//c", "op:///", "op://a/b/c?a=b=c&&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, r, r.String(), again, err)
		}
		for _, p := range []string{r.Vault, r.Item, r.Section, r.Field} {
			if strings.ContainsAny(p, "{}$`'\"\\\n\r\x00;|&<>()/?=") {
				t.Fatalf("accepted %q with a metacharacter in %q", s, p)
			}
		}
	})
}
