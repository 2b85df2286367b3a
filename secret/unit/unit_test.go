package unit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

func spec(t *testing.T) *Spec {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &Spec{
		Name:            "litellm",
		Secrets:         []Secret{{"OPENAI_API_KEY", "op://SA - production/OpenAI/credential"}, {"ODD", `op://SA - production/it's "$(x)" 100%/c\d`}},
		Templates:       []Template{{"config.yaml", "/etc/litellm/config.yaml.tpl"}},
		Before:          []string{"litellm.service"},
		TokenCredential: "/run/agenix/op-sa",
		Owner:           "litellm:litellm",
		RSSH:            self,
	}
}

func section(f File, name string) map[string][]string {
	out := map[string][]string{}
	for _, s := range f.Sections {
		if s.Name == name {
			for _, e := range s.Entries {
				out[e.Key] = append(out[e.Key], e.Value)
			}
		}
	}
	return out
}

// The fetch unit has what the issue asks of it.
func TestFetchUnit(t *testing.T) {
	s := spec(t)
	files, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || files[0].Path != "rssh-secrets-litellm.service" || files[1].Path != "rssh-secrets-litellm-templates.service" || files[2].Path != "litellm.service.d/rssh-secrets-litellm.conf" {
		t.Fatalf("files %+v", files)
	}
	svc := section(files[0], "Service")
	for k, v := range map[string]string{
		"Type": "oneshot", "RemainAfterExit": "yes", "Restart": "on-failure", "RestartSec": "5", "TimeoutStartSec": "300",
		"LoadCredential": "op-service-account-token:/run/agenix/op-sa", "RuntimeDirectory": "rssh-secrets/litellm",
		"RuntimeDirectoryMode": "0700", "UMask": "0077",
	} {
		if got := strings.Join(svc[k], "|"); got != v {
			t.Errorf("%s=%s, want %s", k, got, v)
		}
	}
	want := s.RSSH + ` "secret" "fetch" "--out" "/run/rssh-secrets/litellm/env" "--attempts" "12" "--file-mode" "0400" ` +
		`"OPENAI_API_KEY=op://SA - production/OpenAI/credential" "ODD=op://SA - production/it's \"$$(x)\" 100%%/c\\d"`
	if got := svc["ExecStart"]; len(got) != 1 || got[0] != want {
		t.Errorf("ExecStart=%q\nwant       %q", got, want)
	}
	if got := section(files[0], "Unit")["Before"]; len(got) != 1 || got[0] != "litellm.service" {
		t.Errorf("Before=%q", got)
	}
	if got := section(files[0], "Install")["RequiredBy"]; len(got) != 1 || got[0] != "litellm.service" {
		t.Errorf("RequiredBy=%q", got)
	}
	drop := files[2]
	if got := section(drop, "Unit"); strings.Join(got["Requires"], " ") != "rssh-secrets-litellm.service rssh-secrets-litellm-templates.service" ||
		strings.Join(got["After"], " ") != "rssh-secrets-litellm.service rssh-secrets-litellm-templates.service" {
		t.Errorf("drop-in [Unit] %q", got)
	}
	if got := section(drop, "Service")["EnvironmentFile"]; len(got) != 1 || got[0] != "/run/rssh-secrets/litellm/env" {
		t.Errorf("EnvironmentFile=%q", got)
	}
	s.Encrypted = true
	files, _ = s.Files()
	if got := section(files[0], "Service")["LoadCredentialEncrypted"]; len(got) != 1 || got[0] != "op-service-account-token:/run/agenix/op-sa" {
		t.Errorf("LoadCredentialEncrypted=%q", got)
	}
}

// With DynamicUser the consumer fetches in its own ExecStartPre.
func TestDynamicUser(t *testing.T) {
	s := spec(t)
	s.DynamicUser = true
	s.Before = []string{"a.service", "b.service"}
	files, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "a.service.d/rssh-secrets-litellm.conf" || files[1].Path != "b.service.d/rssh-secrets-litellm.conf" {
		t.Fatalf("files %+v", files)
	}
	svc := section(files[0], "Service")
	if len(svc["ExecStartPre"]) != 2 || svc["ExecStartPre"][0] != s.FetchCommand() || svc["ExecStartPre"][1] != s.RenderCommands()[0] ||
		strings.Join(svc["EnvironmentFile"], "") != "-/run/rssh-secrets/litellm/env" ||
		strings.Join(svc["RuntimeDirectory"], " ") != "rssh-secrets/litellm rssh-secrets/litellm-templates" ||
		strings.Join(svc["LoadCredential"], "") != "op-service-account-token:/run/agenix/op-sa" {
		t.Errorf("drop-in %q", svc)
	}
}

func TestFillErrors(t *testing.T) {
	for _, c := range []struct {
		edit func(*Spec)
		want string
	}{
		{func(s *Spec) { s.Name = "a/b" }, "name \"a/b\""},
		{func(s *Spec) { s.Secrets, s.Templates = nil, nil }, "no secrets and no templates"},
		{func(s *Spec) { s.TokenCredential = "" }, "--token-credential"},
		{func(s *Spec) { s.Out = "/var/lib/x/env" }, "want a path under /run"},
		{func(s *Spec) { s.Out = "/run/env" }, "want a path under /run"},
		{func(s *Spec) { s.Secrets[0].Key = "A-B" }, "A-B: want a variable name"},
		{func(s *Spec) { s.Secrets[1].Key = s.Secrets[0].Key }, "is given twice"},
		{func(s *Spec) { s.Secrets[0].Ref = "https://x" }, "does not start with op://"},
		{func(s *Spec) { s.Secrets[0].Ref = "op://a/b\n/c" }, "control character"},
		{func(s *Spec) { s.Before = []string{"litellm"} }, "--before \"litellm\""},
		{func(s *Spec) { s.FileMode = "644x" }, "--file-mode"},
		{func(s *Spec) { s.Owner = "root;rm" }, "--owner"},
		{func(s *Spec) { s.Templates[0].Source = "rel.tpl" }, "template config.yaml"},
		{func(s *Spec) { s.DynamicUser, s.Before = true, nil }, "--dynamic-user"},
	} {
		s := spec(t)
		c.edit(s)
		if _, err := s.Files(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
}

// systemd itself reads the units without a complaint: systemd-analyze
// verify needs no systemd running, and the consumer picks up the drop-in.
func TestUnitsVerify(t *testing.T) {
	sa := testenv.Need(t, "systemd-analyze", "systemd")
	for _, dyn := range []bool{false, true} {
		dir := t.TempDir()
		s := spec(t)
		s.DynamicUser = dyn
		files, err := s.Files()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"verify", filepath.Join(dir, "litellm.service")}
		for _, f := range files {
			p := filepath.Join(dir, f.Path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(f.Text("# test\n")), 0o644)
			if !strings.Contains(f.Path, "/") {
				args = append(args, p)
			}
		}
		consumer := "[Service]\nExecStart=/bin/true\n"
		if dyn {
			consumer += "DynamicUser=yes\n"
		}
		os.WriteFile(filepath.Join(dir, "litellm.service"), []byte(consumer), 0o644)
		cmd := exec.Command(sa, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("dynamic user %v: systemd-analyze verify: %v\n%s", dyn, err, out)
		}
	}
}

// Quote is read back by systemd's rules: in double quotes, \ escapes,
// %% and $$ are single.
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:           `"plain"`,
		`a b`:             `"a b"`,
		`it's "x"`:        `"it's \"x\""`,
		`$(touch X) 100%`: `"$$(touch X) 100%%"`,
		`back\slash`:      `"back\\slash"`,
		`ünï`:             `"ünï"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzQuote: an argument quoted by Quote reads back whole under systemd's
// rules (%% and $$ single, \ escapes inside double quotes), and nothing in
// it can end the quote early.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", `it's "x"`, `$(x) 100%`, `\`, `\"`, "%%$$", "ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		q := Quote(arg)
		if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("%q not in quotes", q)
		}
		var b strings.Builder
		body := q[1 : len(q)-1]
		for i := 0; i < len(body); i++ {
			switch c := body[i]; {
			case c == '\\':
				i++
				if i == len(body) || (body[i] != '\\' && body[i] != '"') {
					t.Fatalf("%q: a lone backslash", q)
				}
				b.WriteByte(body[i])
			case c == '"':
				t.Fatalf("%q: an unescaped quote inside", q)
			case c == '%' || c == '$':
				i++
				if i == len(body) || body[i] != c {
					t.Fatalf("%q: a single %c would be a specifier or a variable", q, c)
				}
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
		}
		if b.String() != arg {
			t.Fatalf("%q reads back as %q", arg, b.String())
		}
	})
}
