package shellinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	tb, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"gh":     {"GH_TOKEN=op://SA - ${RSSH_ENV}/GitHub CLI Token/credential"},
		"aws":    {"AWS_ACCESS_KEY_ID=op://SA - ${RSSH_ENV}/AWS/access key id", "AWS_SECRET_ACCESS_KEY=op://SA - ${RSSH_ENV}/AWS/secret access key"},
		"gcloud": {"CLOUDSDK_AUTH_ACCESS_TOKEN=op://SA - ${RSSH_ENV}/Google Cloud/access token"},
	}
	if len(tb.Tools) != len(want) {
		t.Fatalf("built-in tools %+v", tb.Tools)
	}
	for _, tl := range tb.Tools {
		var got []string
		for _, v := range tl.Vars {
			got = append(got, v.Name+"="+v.Ref)
			if v.Where != "built-in" {
				t.Errorf("%s %s from %q", tl.Name, v.Name, v.Where)
			}
		}
		if strings.Join(got, "|") != strings.Join(want[tl.Name], "|") {
			t.Errorf("%s: %q, want %q", tl.Name, got, want[tl.Name])
		}
	}
	if got := Expand(tb.Tools[0].Vars[0].Ref, "production"); got != "op://SA - production/GitHub CLI Token/credential" {
		t.Errorf("expanded: %q", got)
	}
}

// A user's file replaces a built-in tool whole and adds new tools, one line
// each.
func TestUserFileOverDefaults(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rssh"), 0o700)
	file := "# mine\n\n  gh   GH_TOKEN = op://Personal/GitHub/token  \nterraform\tTF_TOKEN_app_terraform_io=op://SA - ${RSSH_ENV}/Terraform/credential\r\n"
	os.WriteFile(filepath.Join(dir, "rssh", "tools"), []byte(file), 0o600)
	tb, err := Load(func(k string) string { return map[string]string{"XDG_CONFIG_HOME": dir}[k] })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tb.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, " ") != "gh aws gcloud terraform" {
		t.Fatalf("tools %q", names)
	}
	gh, _ := tb.Tool("gh")
	if len(gh.Vars) != 1 || gh.Vars[0].Ref != "op://Personal/GitHub/token" || gh.Vars[0].Where != filepath.Join(dir, "rssh", "tools")+":3" {
		t.Errorf("gh: %+v", gh)
	}
	tf, _ := tb.Tool("terraform")
	if len(tf.Vars) != 1 || tf.Vars[0].Name != "TF_TOKEN_app_terraform_io" {
		t.Errorf("terraform: %+v", tf)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"gh", "f:1: want TOOL VAR=op://vault/item/field"},
		{"\n\ngh GH_TOKEN", "f:3: want VAR=op://vault/item/field after gh"},
		{"gh GH_TOKEN=op://a/b", "f:1: GH_TOKEN: reference \"op://a/b\": want op://vault/item/[section/]field"},
		{"gh GH_TOKEN=https://a/b/c", "does not start with op://"},
		{"gh GH_TOKEN=op://a//c", "has an empty part"},
		{"gh GH_TOKEN=op://${HOME}/b/c", "only ${RSSH_ENV} is expanded"},
		{"gh GH_TOKEN=op://${RSSH_ENV/b/c", "only ${RSSH_ENV} is expanded"},
		{"gh 1X=op://a/b/c", "variable name \"1X\""},
		{"gh PATH=op://a/b/c", "variable PATH: a wrapper may not set it"},
		{"gh OP_SERVICE_ACCOUNT_TOKEN=op://a/b/c", "may not set it"},
		{"-gh X=op://a/b/c", "tool name \"-gh\""},
		{"g;h X=op://a/b/c", "tool name \"g;h\""},
		{"command X=op://a/b/c", "the wrappers use that word themselves"},
		{"gh X=op://a/b/c\ngh X=op://a/b/d", "f:2: gh X is already set at f:1"},
		{"gh X=op://a/b/c\x01", "control character"},
		{"gh X=op://a/b/c\n" + strings.Repeat("x", maxLineBytes+1), "f:2: line longer than"},
	} {
		_, err := Parse(strings.NewReader(c.in), "f")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): %v, want %q", c.in, err, c.want)
		}
	}
	if _, err := Parse(strings.NewReader(strings.Repeat("#\n", maxFileBytes)), "f"); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a huge file: %v", err)
	}
}

func TestCheckEnv(t *testing.T) {
	for env, ok := range map[string]bool{"production": true, "dev-1": true, "": false, "a/b": false, "x\n": false, "${X}": false} {
		if err := CheckEnv(env); (err == nil) != ok {
			t.Errorf("CheckEnv(%q): %v", env, err)
		}
	}
}

// format writes t back in the file syntax.
func format(t *Table) string {
	var b strings.Builder
	for _, tl := range t.Tools {
		for _, v := range tl.Vars {
			fmt.Fprintf(&b, "%s %s=%s\n", tl.Name, v.Name, v.Ref)
		}
	}
	return b.String()
}

// FuzzParse: no input panics, every accepted table names only valid tools,
// variables and references, and reads back the same once written out.
func FuzzParse(f *testing.F) {
	f.Add(Defaults)
	f.Add("gh GH_TOKEN=op://a/b/c\n# c\n\naws A=op://x/y/z/w?attribute=otp\r\n")
	f.Add("gh\tX = op://${RSSH_ENV}/b/c ")
	f.Add("gh X=op://a/${RSSH_ENV}}/c")
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := Parse(strings.NewReader(in), "f")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") && !strings.HasPrefix(err.Error(), "f: ") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		for _, tl := range tb.Tools {
			if checkTool(tl.Name) != nil {
				t.Fatalf("accepted tool %q", tl.Name)
			}
			for _, v := range tl.Vars {
				if checkVar(v.Name) != nil || CheckRef(v.Ref) != nil || strings.TrimSpace(v.Ref) != v.Ref {
					t.Fatalf("accepted %q=%q", v.Name, v.Ref)
				}
			}
		}
		again, err := Parse(strings.NewReader(format(tb)), "g")
		if err != nil {
			t.Fatalf("written back %q does not parse: %v", format(tb), err)
		}
		if format(again) != format(tb) {
			t.Fatalf("round trip: %q then %q", format(tb), format(again))
		}
	})
}
