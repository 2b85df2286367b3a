package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestHostNames(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, ".ssh")
	os.MkdirAll(filepath.Join(dir, "conf.d"), 0o700)
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("config", "Host prod-web-1 \"prod db\" *.internal !bastion\n\tUser x\nHost\tdev-1,dev-2\nMatch exec false\n\tInclude conf.d/*\nInclude ~/.ssh/loop\n")
	write("conf.d/a", "Host builder\nHost prod-web-1\n")
	write("loop", "Host looped\nInclude loop\n") // includes itself: bounded by depth
	got := HostNames("")
	want := []string{"prod-web-1", "prod db", "dev-1", "dev-2", "builder", "looped"}
	if !slices.Equal(got, want) {
		t.Errorf("HostNames = %q, want %q", got, want)
	}
	if got := HostNames(filepath.Join(dir, "conf.d", "a")); !slices.Equal(got, []string{"builder", "prod-web-1"}) {
		t.Errorf("HostNames(-F conf.d/a) = %q", got)
	}
	if got := HostNames(filepath.Join(dir, "missing")); len(got) != 0 {
		t.Errorf("a missing file gives %q, want nothing", got)
	}
}
