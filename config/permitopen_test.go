package config

import "testing"

// TestParsePermitRemoteOpen: PermitRemoteOpen as ssh_init_forward_permissions
// applies it and open_match matches it.
func TestParsePermitRemoteOpen(t *testing.T) {
	type probe struct {
		host string
		port int
		ok   bool
	}
	for _, c := range []struct {
		list   []string
		err    string
		probes []probe
	}{
		{nil, "", []probe{{"anything", 1, true}}},
		{[]string{"any"}, "", []probe{{"127.0.0.1", 22, true}}},
		{[]string{"none"}, "", []probe{{"127.0.0.1", 22, false}, {"*", 22, false}}},
		{[]string{"127.0.0.1:22", "[::1]:*", "localhost:ssh"}, "", []probe{
			{"127.0.0.1", 22, true}, {"127.0.0.1", 23, false}, {"::1", 9, true},
			{"[::1]", 9, false}, {"localhost", 22, true}, {"Localhost", 22, false},
		}},
		{[]string{"*:80"}, "", []probe{{"a", 80, true}, {"b", 81, false}}},
		{[]string{"*:*"}, "", []probe{{"a", 1, true}}},
		// The keywords count in lower case only.
		{[]string{"NONE"}, "bad port number in permitremoteopen", nil},
		{[]string{"a:0"}, "bad port number in permitremoteopen", nil},
		{[]string{"a/22"}, "missing host in permitremoteopen", nil},
		{[]string{"[::1"}, "missing host in permitremoteopen", nil},
	} {
		p, err := ParsePermitRemoteOpen(c.list)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.list, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.list, err)
			continue
		}
		for _, pr := range c.probes {
			if got := p.Permits(pr.host, pr.port); got != pr.ok {
				t.Errorf("%q permits %s:%d = %v, want %v", c.list, pr.host, pr.port, got, pr.ok)
			}
		}
	}
}
