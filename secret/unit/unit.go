// Package unit writes the systemd units that give a host's service its
// secrets from 1Password with the Service Account token systemd hands over
// as a credential: the oneshot fetch unit (`rssh secret fetch` into a RAM
// file), the render unit for templates (`rssh secret inject`), and the
// drop-in that orders the consuming service after them and reads the
// file. It is `rssh secret systemd-unit` and the model the NixOS module
// (nix/secrets.nix) follows option for option; it runs nothing.
package unit

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Credential is the credential ID rssh reads the token from:
// $CREDENTIALS_DIRECTORY/op-service-account-token.
const Credential = "op-service-account-token"

// Documentation is the units' Documentation= link.
const Documentation = "https://github.com/rssh/rssh#secrets-for-services"

// Secret is one KEY=op://… of the env file.
type Secret struct{ Key, Ref string }

// Template is one file rendered by `rssh secret inject`: Name is the file
// name in the template directory, Source the template's path.
type Template struct{ Name, Source string }

// Spec is one group of secrets for one or more consuming services: the
// NixOS module's services.rssh-secrets.<name>.
type Spec struct {
	Name            string     // the group; units are rssh-secrets-NAME(.templates).service
	Secrets         []Secret   // the env file's variables
	Templates       []Template // files rendered from templates
	Before          []string   // the consuming units
	TokenCredential string     // the token file systemd loads as the credential
	Encrypted       bool       // TokenCredential is systemd-creds encrypted (LoadCredentialEncrypted=)
	Out             string     // the env file; default /run/rssh-secrets/NAME/env
	TemplateDir     string     // default /run/rssh-secrets/NAME-templates
	Attempts        int        // fetch --attempts; default 12
	RestartSec      int        // seconds; default 5
	TimeoutStartSec int        // seconds; default 300
	FileMode        string     // default 0400
	Owner           string     // USER[:GROUP] that gets the rendered templates; default root
	DynamicUser     bool       // fetch in the consumer's ExecStartPre instead of units of its own
	RSSH            string     // the rssh binary
	Chown           string     // the chown program; default chown (systemd's search path)
}

// Defaults of Spec, shared with the NixOS module's option defaults.
const (
	DefaultAttempts        = 12
	DefaultRestartSec      = 5
	DefaultTimeoutStartSec = 300
	DefaultFileMode        = "0400"
)

var (
	nameRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`) })
	keyRe  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
	unitRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|target|socket|timer|path|mount)$`)
	})
	modeRe  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^0?[0-7]{3}$`) })
	ownerRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?(:[a-z_][a-z0-9_-]*[$]?)?$`) })
)

// Fill sets the defaults and checks the spec.
func (s *Spec) Fill() error {
	if !nameRe().MatchString(s.Name) || len(s.Name) > 100 {
		return fmt.Errorf("name %q: want letters, digits and _ . - (not first)", s.Name)
	}
	if len(s.Secrets) == 0 && len(s.Templates) == 0 {
		return errors.New("no secrets and no templates: give KEY=op://vault/item/field or --template")
	}
	if s.TokenCredential == "" || !path.IsAbs(s.TokenCredential) {
		return errors.New("--token-credential: want the absolute path of the token file (agenix's, say)")
	}
	if s.Out == "" {
		s.Out = "/run/rssh-secrets/" + s.Name + "/env"
	}
	if s.TemplateDir == "" {
		s.TemplateDir = "/run/rssh-secrets/" + s.Name + "-templates"
	}
	if s.Attempts == 0 {
		s.Attempts = DefaultAttempts
	}
	if s.RestartSec == 0 {
		s.RestartSec = DefaultRestartSec
	}
	if s.TimeoutStartSec == 0 {
		s.TimeoutStartSec = DefaultTimeoutStartSec
	}
	if s.FileMode == "" {
		s.FileMode = DefaultFileMode
	}
	if s.Chown == "" {
		s.Chown = "chown"
	}
	if s.RSSH == "" || !path.IsAbs(s.RSSH) {
		return errors.New("--rssh: want the absolute path of the rssh binary")
	}
	for _, p := range []string{s.Out, s.TemplateDir} {
		if _, ok := runtimeDir(p, p == s.TemplateDir); !ok || strings.ContainsFunc(p, isControl) {
			return fmt.Errorf("%s: want a path under /run (a RAM filesystem that systemd makes and removes)", p)
		}
	}
	if s.Attempts < 1 || s.RestartSec < 1 || s.TimeoutStartSec < 1 {
		return errors.New("--attempts, --restart-sec and --timeout-start-sec must be positive")
	}
	if !modeRe().MatchString(s.FileMode) {
		return fmt.Errorf("--file-mode %q: want an octal mode such as 0400", s.FileMode)
	}
	if s.Owner != "" && !ownerRe().MatchString(s.Owner) {
		return fmt.Errorf("--owner %q: want USER or USER:GROUP", s.Owner)
	}
	seen := map[string]bool{}
	for _, sec := range s.Secrets {
		if !keyRe().MatchString(sec.Key) {
			return fmt.Errorf("%s: want a variable name (letters, digits, _)", sec.Key)
		}
		if seen[sec.Key] {
			return fmt.Errorf("%s is given twice", sec.Key)
		}
		seen[sec.Key] = true
		if err := checkRef(sec.Ref); err != nil {
			return fmt.Errorf("%s: %w", sec.Key, err)
		}
	}
	seen = map[string]bool{}
	for _, t := range s.Templates {
		if !nameRe().MatchString(t.Name) || seen[t.Name] {
			return fmt.Errorf("template %q: want a file name, given once", t.Name)
		}
		seen[t.Name] = true
		if !path.IsAbs(t.Source) || strings.ContainsFunc(t.Source, isControl) {
			return fmt.Errorf("template %s: want the absolute path of its source", t.Name)
		}
	}
	for _, u := range s.Before {
		if !unitRe().MatchString(u) {
			return fmt.Errorf("--before %q: want a unit name such as litellm.service", u)
		}
	}
	if s.DynamicUser {
		if len(s.Before) == 0 {
			return errors.New("--dynamic-user: name the consuming service with --before")
		}
		for _, u := range s.Before {
			if !strings.HasSuffix(u, ".service") {
				return fmt.Errorf("--dynamic-user: %s is not a service to fetch in", u)
			}
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func checkRef(ref string) error {
	if !strings.HasPrefix(ref, "op://") {
		return fmt.Errorf("reference %q does not start with op://", ref)
	}
	if strings.ContainsFunc(ref, isControl) {
		return errors.New("the reference has a control character")
	}
	return nil
}

// runtimeDir is p's RuntimeDirectory= value: its directory (or p itself,
// for a directory) relative to /run.
func runtimeDir(p string, isDir bool) (string, bool) {
	if !isDir {
		p = path.Dir(p)
	}
	rel, ok := strings.CutPrefix(path.Clean(p), "/run/")
	if !ok || rel == "" || p != path.Clean(p) || strings.ContainsFunc(rel, isControl) {
		return "", false
	}
	return rel, true
}

// FetchUnit is the fetch unit's name; TemplatesUnit the render unit's.
func (s *Spec) FetchUnit() string     { return "rssh-secrets-" + s.Name + ".service" }
func (s *Spec) TemplatesUnit() string { return "rssh-secrets-" + s.Name + "-templates.service" }

// Entry is one Key=Value line of a unit file.
type Entry struct{ Key, Value string }

// Section is [Name] and its lines.
type Section struct {
	Name    string
	Entries []Entry
}

// File is a unit file or drop-in: Path relative to the unit directory
// (rssh-secrets-x.service, litellm.service.d/rssh-secrets-x.conf).
type File struct {
	Path     string
	Sections []Section
}

func (f *File) add(section, key, value string) {
	for i := range f.Sections {
		if f.Sections[i].Name == section {
			f.Sections[i].Entries = append(f.Sections[i].Entries, Entry{key, value})
			return
		}
	}
	f.Sections = append(f.Sections, Section{Name: section, Entries: []Entry{{key, value}}})
}

// Text is the file as systemd reads it.
func (f *File) Text(header string) string {
	var b strings.Builder
	b.WriteString(header)
	for i, s := range f.Sections {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "[%s]\n", s.Name)
		for _, e := range s.Entries {
			fmt.Fprintf(&b, "%s=%s\n", e.Key, e.Value)
		}
	}
	return b.String()
}

// Quote is one argument of an Exec line: always in double quotes, with \
// and " escaped and systemd's specifiers (%) and variables ($) doubled, so
// systemd hands the program exactly the argument (the NixOS module quotes
// the same way).
func Quote(arg string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$")
	return `"` + r.Replace(arg) + `"`
}

// Command is an Exec line: the program as is, each argument quoted.
func Command(prog string, args ...string) string {
	var b strings.Builder
	b.WriteString(strings.NewReplacer("%", "%%", "$", "$$").Replace(prog))
	for _, a := range args {
		b.WriteString(" ")
		b.WriteString(Quote(a))
	}
	return b.String()
}

// FetchArgs are rssh's arguments for the fetch: rssh secret fetch.
func (s *Spec) FetchArgs() []string {
	args := []string{"secret", "fetch", "--out", s.Out, "--attempts", strconv.Itoa(s.Attempts), "--file-mode", s.FileMode}
	for _, sec := range s.Secrets {
		args = append(args, sec.Key+"="+sec.Ref)
	}
	return args
}

// FetchCommand is the fetch's Exec line.
func (s *Spec) FetchCommand() string { return Command(s.RSSH, s.FetchArgs()...) }

// RenderArgs are rssh's arguments for each template: rssh secret inject.
func (s *Spec) RenderArgs() [][]string {
	var out [][]string
	for _, t := range s.Templates {
		out = append(out, []string{"secret", "inject", "-i", t.Source, "-o", path.Join(s.TemplateDir, t.Name), "--file-mode", s.FileMode})
	}
	return out
}

// RenderCommands are the render unit's ExecStart lines, one `rssh secret
// inject` per template.
func (s *Spec) RenderCommands() []string {
	var out []string
	for _, a := range s.RenderArgs() {
		out = append(out, Command(s.RSSH, a...))
	}
	return out
}

// ChownCommand hands the rendered templates (and their directory) to Owner.
func (s *Spec) ChownCommand() string {
	args := []string{s.Owner, s.TemplateDir}
	for _, t := range s.Templates {
		args = append(args, path.Join(s.TemplateDir, t.Name))
	}
	return Command(s.Chown, args...)
}

func (s *Spec) credential() (string, string) {
	if s.Encrypted {
		return "LoadCredentialEncrypted", Credential + ":" + s.TokenCredential
	}
	return "LoadCredential", Credential + ":" + s.TokenCredential
}

// oneshot is the part the fetch and render units share.
func (s *Spec) oneshot(f *File, description string, runtime string) {
	f.add("Unit", "Description", description)
	f.add("Unit", "Documentation", Documentation)
	f.add("Unit", "Wants", "network-online.target")
	f.add("Unit", "After", "network-online.target")
	for _, u := range s.Before {
		f.add("Unit", "Before", u)
	}
	f.add("Service", "Type", "oneshot")
	f.add("Service", "RemainAfterExit", "yes")
	f.add("Service", "Restart", "on-failure")
	f.add("Service", "RestartSec", strconv.Itoa(s.RestartSec))
	f.add("Service", "TimeoutStartSec", strconv.Itoa(s.TimeoutStartSec))
	k, v := s.credential()
	f.add("Service", k, v)
	f.add("Service", "RuntimeDirectory", runtime)
	f.add("Service", "RuntimeDirectoryMode", "0700")
	f.add("Service", "UMask", "0077")
	f.add("Service", "NoNewPrivileges", "yes")
	f.add("Service", "PrivateTmp", "yes")
}

// Files are the units for the spec: the fetch unit (if there are
// secrets), the render unit (if there are templates), and a drop-in per
// consuming service that requires them, orders it after them and reads the
// env file. With DynamicUser only the drop-ins, which fetch and render in
// the consumer's own ExecStartPre, as the consumer's user, into its own
// RuntimeDirectory.
func (s *Spec) Files() ([]File, error) {
	if err := s.Fill(); err != nil {
		return nil, err
	}
	var files []File
	var deps []string
	if s.DynamicUser {
		for _, c := range s.Before {
			f := File{Path: c + ".d/rssh-secrets-" + s.Name + ".conf"}
			k, v := s.credential()
			f.add("Service", k, v)
			rd, _ := runtimeDir(s.Out, false)
			f.add("Service", "RuntimeDirectory", rd)
			if len(s.Templates) > 0 {
				td, _ := runtimeDir(s.TemplateDir, true)
				if td != rd {
					f.add("Service", "RuntimeDirectory", td)
				}
			}
			if len(s.Secrets) > 0 {
				f.add("Service", "ExecStartPre", s.FetchCommand())
				// Read when ExecStart starts, after the fetch wrote it; the
				// "-" lets the ExecStartPre lines start before it exists.
				f.add("Service", "EnvironmentFile", "-"+s.Out)
			}
			for _, c := range s.RenderCommands() {
				f.add("Service", "ExecStartPre", c)
			}
			files = append(files, f)
		}
		return files, nil
	}
	if len(s.Secrets) > 0 {
		f := File{Path: s.FetchUnit()}
		rd, _ := runtimeDir(s.Out, false)
		s.oneshot(&f, "rssh: the secrets of "+s.Name+" from 1Password", rd)
		f.add("Service", "ExecStart", s.FetchCommand())
		for _, u := range s.Before {
			f.add("Install", "RequiredBy", u)
		}
		files = append(files, f)
		deps = append(deps, s.FetchUnit())
	}
	if len(s.Templates) > 0 {
		f := File{Path: s.TemplatesUnit()}
		td, _ := runtimeDir(s.TemplateDir, true)
		s.oneshot(&f, "rssh: the templates of "+s.Name+" rendered from 1Password", td)
		for _, c := range s.RenderCommands() {
			f.add("Service", "ExecStart", c)
		}
		if s.Owner != "" {
			f.add("Service", "ExecStartPost", s.ChownCommand())
		}
		for _, u := range s.Before {
			f.add("Install", "RequiredBy", u)
		}
		files = append(files, f)
		deps = append(deps, s.TemplatesUnit())
	}
	for _, c := range s.Before {
		if !strings.HasSuffix(c, ".service") {
			continue // a target is ordered, it reads no file
		}
		f := File{Path: c + ".d/rssh-secrets-" + s.Name + ".conf"}
		for _, d := range deps {
			f.add("Unit", "Requires", d)
			f.add("Unit", "After", d)
		}
		if len(s.Secrets) > 0 {
			f.add("Service", "EnvironmentFile", s.Out)
		}
		files = append(files, f)
	}
	return files, nil
}

// SortSecrets orders secrets by key, as the NixOS module's attribute set
// does.
func SortSecrets(ss []Secret) {
	slices.SortFunc(ss, func(a, b Secret) int { return strings.Compare(a.Key, b.Key) })
}
