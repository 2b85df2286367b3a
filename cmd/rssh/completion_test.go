package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/internal/testenv"
)

// TestMain lets the test binary stand in for rssh (the completion scripts
// call `rssh --complete-hosts`) when a test runs it under that name.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "rssh" {
		os.Exit(run(os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr}, os.Getenv))
	}
	os.Exit(m.Run())
}

// completionEnv is a HOME with an ssh_config (Host lines, an Include) and
// a known_hosts, and a PATH whose rssh is this test binary.
func completionEnv(t *testing.T) (env []string, home string) {
	home = t.TempDir()
	ssh := filepath.Join(home, ".ssh")
	os.MkdirAll(filepath.Join(ssh, "conf.d"), 0o700)
	os.WriteFile(filepath.Join(ssh, "config"), []byte("Host prod-web-1 prod-db *.internal\n\tUser x\nInclude conf.d/*\n"), 0o600)
	os.WriteFile(filepath.Join(ssh, "conf.d", "builders"), []byte("Host builder-1\n"), 0o600)
	os.WriteFile(filepath.Join(ssh, "known_hosts"), []byte("prod-known,10.0.0.9 ssh-ed25519 AAAA\n[prod-port]:2222 ssh-ed25519 AAAA\n|1|hash= ssh-ed25519 AAAA\n"), 0o600)
	os.WriteFile(filepath.Join(home, "other_config"), []byte("Host elsewhere\n"), 0o600)
	bin := filepath.Join(home, "bin")
	os.Mkdir(bin, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "rssh")); err != nil {
		t.Fatal(err)
	}
	return []string{"HOME=" + home, "PATH=" + bin + ":/usr/bin:/bin", "TERM=dumb"}, home
}

func completions(t *testing.T, env []string, shell string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(shell, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	var words []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if w, _, _ := strings.Cut(l, "\t"); w != "" { // fish: word<TAB>description
			words = append(words, w)
		}
	}
	return words
}

func TestBashCompletion(t *testing.T) {
	bash := testenv.Need(t, "bash", "bash")
	env, home := completionEnv(t)
	complete := func(words ...string) []string {
		t.Helper()
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		script := `source <(rssh completion bash) || exit 1
COMP_WORDS=(` + strings.Join(quoted, " ") + `); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _rssh; printf '%s\n' "${COMPREPLY[@]}"`
		got := completions(t, env, bash, "-c", script)
		slices.Sort(got)
		return got
	}
	if got, want := complete("rssh", "pro"), []string{"prod-db", "prod-known", "prod-port", "prod-web-1"}; !slices.Equal(got, want) {
		t.Errorf("rssh pro<TAB> = %q, want %q (config and known_hosts; no patterns, no hashes)", got, want)
	}
	if got, want := complete("rssh", "-v", "alice@bu"), []string{"alice@builder-1"}; !slices.Equal(got, want) {
		t.Errorf("rssh -v alice@bu<TAB> = %q, want %q (Include followed, user kept)", got, want)
	}
	if got, want := complete("rssh", "-F", filepath.Join(home, "other_config"), "el"), []string{"elsewhere"}; !slices.Equal(got, want) {
		t.Errorf("rssh -F other el<TAB> = %q, want %q", got, want)
	}
	if got := complete("rssh", "-o", "ForwardA"); !slices.Equal(got, []string{"ForwardAgent="}) {
		t.Errorf("rssh -o ForwardA<TAB> = %q", got)
	}
	if got := complete("rssh", "-p", "pro"); len(got) != 0 {
		t.Errorf("rssh -p pro<TAB> completed a port with %q", got)
	}
	if got := complete("rssh", "prod-db", "pro"); slices.Contains(got, "prod-web-1") {
		t.Errorf("after the destination, host names were offered for the command: %q", got)
	}
	if got := complete("rssh", "-"); !slices.Contains(got, "-W") || !slices.Contains(got, "--env") || slices.Contains(got, "-X") {
		t.Errorf("rssh -<TAB> = %q, want rssh's options and not the refused ones", got)
	}
}

func TestFishCompletion(t *testing.T) {
	fish := testenv.Need(t, "fish", "fish")
	env, _ := completionEnv(t)
	got := completions(t, env, fish, "--no-config", "-c", `rssh completion fish | source; complete -C "rssh pro"`)
	slices.Sort(got)
	if want := []string{"prod-db", "prod-known", "prod-port", "prod-web-1"}; !slices.Equal(got, want) {
		t.Errorf("fish: rssh pro<TAB> = %q, want %q", got, want)
	}
	got = completions(t, env, fish, "--no-config", "-c", `rssh completion fish | source; complete -C "rssh -o ServerAl"`)
	if !slices.Contains(got, "ServerAliveInterval") {
		t.Errorf("fish: rssh -o ServerAl<TAB> = %q", got)
	}
}

func TestZshCompletion(t *testing.T) {
	zsh := testenv.Need(t, "zsh", "zsh")
	env, _ := completionEnv(t)
	// zsh completes only inside its line editor; the script must load with
	// compinit, and its host and keyword functions give the right words
	// (_wanted and compadd stubbed to print what they are handed).
	script := `autoload -U compinit && compinit -u -D || exit 1
source <(rssh completion zsh) || exit 1
(( $+functions[_rssh] )) || exit 2
[[ $_comps[rssh] == _rssh ]] || exit 3
_wanted() { shift 3; "$@" }
compadd() { local a; for a in "${(@P)${@[-1]}}"; do print -r -- "$a"; done }
typeset -A opt_args
_rssh_hosts
_rssh_options | grep '^ForwardAgent$'`
	got := completions(t, env, zsh, "-f", "-c", script)
	for _, want := range []string{"prod-web-1", "builder-1", "prod-known", "ForwardAgent"} {
		if !slices.Contains(got, want) {
			t.Errorf("zsh: %q missing from %q", want, got)
		}
	}
}

// Every keyword completed after -o is one config knows.
func TestCompletionKeywordsAreKeywords(t *testing.T) {
	for _, k := range sshKeywords {
		if !config.IsKeyword(k) {
			t.Errorf("%s is completed after -o but is not an ssh_config keyword", k)
		}
	}
}
