package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
	"github.com/rssh/rssh/secret/unit"
)

// nixGroup is one services.rssh-secrets.<name> as eval-secrets.nix sets it.
type nixGroup struct {
	Secrets   map[string]string `json:"secrets"`
	Templates map[string]struct {
		Source *string `json:"source"`
		Text   *string `json:"text"`
	} `json:"templates"`
	Before          []string `json:"before"`
	TokenCredential string   `json:"tokenCredential"`
	Encrypted       bool     `json:"encrypted"`
	Out             string   `json:"out"`
	TemplateDir     string   `json:"templateDir"`
	Attempts        int      `json:"attempts"`
	RestartSec      int      `json:"restartSec"`
	TimeoutStartSec int      `json:"timeoutStartSec"`
	FileMode        string   `json:"fileMode"`
	Owner           *string  `json:"owner"`
	DynamicUser     bool     `json:"dynamicUser"`
}

// moduleFlags is each option of services.rssh-secrets.<name> and the
// systemd-unit flag it mirrors.
var moduleFlags = map[string]string{
	"attempts": "--attempts", "before": "--before", "dynamicUser": "--dynamic-user", "encrypted": "--encrypted",
	"fileMode": "--file-mode", "out": "--out", "owner": "--owner", "package": "--rssh", "restartSec": "--restart-sec",
	"secrets": "KEY=op://…", "templateDir": "--template-dir", "templates": "--template", "timeoutStartSec": "--timeout-start-sec",
	"tokenCredential": "--token-credential",
}

// args is the systemd-unit command line for the same input as g.
func (g nixGroup) args(name string) []string {
	a := []string{name, "--token-credential", g.TokenCredential, "--rssh", "/nix/store/rssh/bin/rssh", "--chown-program", "/nix/store/coreutils/bin/chown"}
	for _, b := range g.Before {
		a = append(a, "--before", b)
	}
	if g.Out != "" {
		a = append(a, "--out", g.Out)
	}
	if g.TemplateDir != "" {
		a = append(a, "--template-dir", g.TemplateDir)
	}
	for f, t := range g.Templates {
		src := "/nix/store/0000-rssh-template-" + name + "-" + f // the stub's pkgs.writeText
		if t.Source != nil {
			src = *t.Source
		}
		a = append(a, "--template", f+"="+src)
	}
	for flag, n := range map[string]int{"--attempts": g.Attempts, "--restart-sec": g.RestartSec, "--timeout-start-sec": g.TimeoutStartSec} {
		if n != 0 {
			a = append(a, flag, fmt.Sprint(n))
		}
	}
	if g.FileMode != "" {
		a = append(a, "--file-mode", g.FileMode)
	}
	if g.Owner != nil {
		a = append(a, "--owner", *g.Owner)
	}
	if g.Encrypted {
		a = append(a, "--encrypted")
	}
	if g.DynamicUser {
		a = append(a, "--dynamic-user")
	}
	for k, v := range g.Secrets {
		a = append(a, k+"="+v)
	}
	return a
}

// lines is a unit as "Section.Key" → values, the shape both sides reduce to.
type lines map[string][]string

func fileLines(f unit.File, into lines) {
	for _, s := range f.Sections {
		for _, e := range s.Entries {
			into[s.Name+"."+e.Key] = append(into[s.Name+"."+e.Key], e.Value)
		}
	}
}

// nixLines reads a NixOS systemd.services entry as the unit NixOS writes.
func nixLines(svc map[string]any) lines {
	out := lines{}
	val := func(v any) []string {
		switch v := v.(type) {
		case bool:
			if v {
				return []string{"yes"}
			}
			return []string{"no"}
		case float64:
			return []string{fmt.Sprint(v)}
		case string:
			return []string{v}
		case []any:
			var s []string
			for _, x := range v {
				s = append(s, fmt.Sprint(x))
			}
			return s
		}
		return []string{fmt.Sprintf("?%T", v)}
	}
	unitKeys := map[string]string{"description": "Unit.Description", "documentation": "Unit.Documentation", "wants": "Unit.Wants",
		"after": "Unit.After", "before": "Unit.Before", "requires": "Unit.Requires", "requiredBy": "Install.RequiredBy"}
	for k, v := range svc {
		if k == "serviceConfig" {
			for sk, sv := range v.(map[string]any) {
				out["Service."+sk] = val(sv)
			}
			continue
		}
		key, ok := unitKeys[k]
		if !ok {
			key = "?" + k
		}
		out[key] = val(v)
	}
	return out
}

// The NixOS module, evaluated against a stub lib, makes the units `rssh
// secret systemd-unit` prints for the same input: the fetch unit, the
// render unit, the consumers' ordering and env files (two groups for one
// consumer merged), and the DynamicUser form; every option has its flag.
func TestNixSecretsModule(t *testing.T) {
	nixInst := testenv.Need(t, "nix-instantiate", "nix-bin")
	out, err := exec.Command(nixInst, "--eval", "--strict", "--json", "testdata/eval-secrets.nix").CombinedOutput()
	if err != nil {
		t.Fatalf("evaluating nix/secrets.nix: %v\n%s", err, out)
	}
	var got struct {
		Groups      map[string]nixGroup       `json:"groups"`
		OptionNames []string                  `json:"optionNames"`
		Services    map[string]map[string]any `json:"services"`
		Assertions  []bool                    `json:"assertions"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, o := range got.OptionNames {
		if moduleFlags[o] == "" {
			t.Errorf("option %s has no systemd-unit flag in moduleFlags", o)
		}
	}
	if len(got.OptionNames) != len(moduleFlags) {
		t.Errorf("options %q, flags for %d", got.OptionNames, len(moduleFlags))
	}
	for i, ok := range got.Assertions {
		if !ok {
			t.Errorf("assertion %d fails for a valid configuration", i)
		}
	}
	want := map[string]lines{} // systemd.services name → lines
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range got.Groups {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		s, _, err := parseSecretUnit(got.Groups[name].args(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		files, err := s.Files()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, f := range files {
			svc := strings.TrimSuffix(f.Path, ".service")
			if c, _, ok := strings.Cut(f.Path, ".service.d/"); ok {
				svc = c
			}
			if want[svc] == nil {
				want[svc] = lines{}
			}
			fileLines(f, want[svc])
		}
	}
	if !reflect.DeepEqual(slices.Sorted(mapKeys(want)), slices.Sorted(mapKeys(got.Services))) {
		t.Fatalf("units: rssh writes %q, the module %q", slices.Sorted(mapKeys(want)), slices.Sorted(mapKeys(got.Services)))
	}
	for name, w := range want {
		g := nixLines(got.Services[name])
		for _, k := range slices.Sorted(mapKeys(union(w, g))) {
			if !slices.Equal(w[k], g[k]) {
				t.Errorf("%s: %s\n  rssh:   %q\n  module: %q", name, k, w[k], g[k])
			}
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func union(a, b lines) lines {
	u := lines{}
	for k, v := range a {
		u[k] = v
	}
	for k, v := range b {
		u[k] = v
	}
	return u
}

// The command line: every file after a "# PATH" line, or with --dir into
// that directory; a mistake gets one error line and the usage.
func TestSecretUnitCommand(t *testing.T) {
	var stdout, stderr strings.Builder
	args := []string{"secret", "systemd-unit", "web", "--token-credential", "/run/agenix/t", "--before", "web.service", "--rssh", "/usr/bin/rssh",
		"B=op://SA - prod/b/c", "A=op://SA - prod/a/c"}
	if code := run(args, stdio{strings.NewReader(""), &stdout, &stderr}, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	o := stdout.String()
	for _, w := range []string{"# rssh-secrets-web.service\n", "\n# web.service.d/rssh-secrets-web.conf\n",
		`ExecStart=/usr/bin/rssh "secret" "fetch" "--out" "/run/rssh-secrets/web/env" "--attempts" "12" "--file-mode" "0400" "A=op://SA - prod/a/c" "B=op://SA - prod/b/c"` + "\n"} {
		if !strings.Contains(o, w) {
			t.Errorf("output lacks %q:\n%s", w, o)
		}
	}
	dir := t.TempDir()
	stdout.Reset()
	if code := run(append(args, "--dir", dir), stdio{strings.NewReader(""), &stdout, &stderr}, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var written []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			written = append(written, rel)
		}
		return nil
	})
	sort.Strings(written)
	if strings.Join(written, " ") != "rssh-secrets-web.service web.service.d/rssh-secrets-web.conf" {
		t.Errorf("--dir wrote %q", written)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"web", "A=op://a/b/c"}, "--token-credential"},
		{[]string{"--token-credential", "/t", "A=op://a/b/c"}, "which name?"},
		{[]string{"web", "--token-credential", "/t", "--attempts", "x", "A=op://a/b/c"}, `--attempts "x": want a positive number`},
		{[]string{"web", "--token-credential", "/t", "--bogus", "A=op://a/b/c"}, "unknown option --bogus"},
		{[]string{"web", "--token-credential", "/t", "stray"}, `unexpected argument "stray"`},
		{[]string{"web", "--token-credential", "/t", "--before"}, "--before needs a value"},
	} {
		stderr.Reset()
		code := run(append([]string{"secret", "systemd-unit"}, c.args...), stdio{strings.NewReader(""), &stdout, &stderr}, func(string) string { return "" })
		e := stderr.String()
		if code != 255 || !strings.HasPrefix(e, "rssh: secret systemd-unit: ") || !strings.Contains(e, c.want) || !strings.Contains(e, "rssh: hint: rssh secret systemd-unit NAME") {
			t.Errorf("%q: exit %d\n%s", c.args, code, e)
		}
	}
}
