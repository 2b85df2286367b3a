package envmap

import (
	"os/exec"
	"strings"
	"testing"
)

// The cache-hit path must never load the 1Password SDK (its WASM core costs
// ~2 s and 85 MB), so this package must not depend on it at all.
func TestNoSDKDependency(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		l := strings.ToLower(p)
		if strings.Contains(l, "1password") || strings.Contains(l, "onepassword") || strings.Contains(l, "extism") || strings.Contains(l, "wazero") {
			t.Errorf("envmap depends on %s", p)
		}
	}
}
