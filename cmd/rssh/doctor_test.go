package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSSHOptsPort(t *testing.T) {
	for opts, want := range map[string]int{
		"-p 2222": 2222, "-F /dev/null -p2200 -o BatchMode=yes": 2200, "-o Port=23": 23, "-oPort=24": 24,
		"": 0, "-i key": 0, "-p x": 0, "-p 70000": 0,
	} {
		if got := sshoptsPort(opts); got != want {
			t.Errorf("sshoptsPort(%q) = %d, want %d", opts, got, want)
		}
	}
}

func TestParseMachines(t *testing.T) {
	file := filepath.Join(t.TempDir(), "machines")
	os.WriteFile(file, []byte("# builders\nssh://root@b1 x86_64-linux - 4 1 - - S0VZ\nssh-ng://b2 aarch64-linux ; b3\n"), 0o644)
	ms, err := parseMachines("@" + file)
	if err != nil || len(ms) != 3 || ms[0].host != "b1" || ms[0].user != "root" || ms[0].hostKey != "S0VZ" ||
		ms[1].host != "b2" || ms[1].hostKey != "" || ms[2].host != "b3" {
		t.Errorf("parseMachines = %+v, %v", ms, err)
	}
	if ms, err := parseMachines("@" + filepath.Join(t.TempDir(), "missing")); err != nil || len(ms) != 0 {
		t.Errorf("a missing machines file (Nix's default) is no builders: %+v, %v", ms, err)
	}
}
