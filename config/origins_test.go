package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Origins names the line that won for each keyword: the first that
// applies, across Host blocks and the command line; defaults are absent.
func TestOrigins(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cfg")
	os.WriteFile(f, []byte("Host other\n\tUser nobody\nHost a\n\tHostName 127.0.0.9\n\tUser bob\nHost *\n\tUser carol\n\tPort 2222\n"), 0o600)
	c, err := Resolve(Request{Host: "a", ConfigFile: f, Options: []string{"ForwardAgent yes"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"hostname": f + ":4", "user": f + ":5", "port": f + ":8", "forwardagent": "command-line"}
	for k, w := range want {
		if got := c.Origins[k].String(); got != w {
			t.Errorf("Origins[%s] = %q, want %q", k, got, w)
		}
	}
	if p, ok := c.Origins["identityfile"]; ok {
		t.Errorf("identityfile took its default but has origin %v", p)
	}
}
