package sdk

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sdkPackage reports whether an import path is the SDK or its WASM runtime.
func sdkPackage(p string) bool {
	l := strings.ToLower(p)
	return strings.Contains(l, "1password") || strings.Contains(l, "onepassword") || strings.Contains(l, "extism") || strings.Contains(l, "wazero")
}

func goListDeps(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies")
	}
	cmd := exec.Command(gobin, append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

// The client path never links the SDK: its packages' init alone costs
// every rssh start time and memory (README, "Measured"). The client
// packages must not depend on it, and the default build of rssh (no
// -tags sdk) must not contain it.
func TestClientNeverLinksSDK(t *testing.T) {
	pkgs := []string{"./sshproxy", "./config", "./envmap", "./hostkeys", "./agentbridge", "./secret", "./secret/resolverd", "./cmd/rssh"}
	if _, err := os.Stat(filepath.Join("..", "..", "session")); err == nil {
		pkgs = append(pkgs, "./session")
	}
	for _, pkg := range pkgs {
		for _, p := range goListDeps(t, pkg) {
			if sdkPackage(p) {
				t.Errorf("%s depends on %s", pkg, p)
				break
			}
		}
	}
	// The check sees the SDK where it is meant to be.
	found := false
	for _, p := range goListDeps(t, "-tags", "sdk", "./cmd/rssh") {
		found = found || sdkPackage(p)
	}
	if !found {
		t.Error("rssh built with -tags sdk does not link the SDK: the check above proves nothing")
	}
}
