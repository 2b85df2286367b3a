package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
)

// Without -tags sdk, --backend sdk says how to get it and auto is op; the
// daemon refuses a backend it does not have.
func TestSDKBackendNotBuiltIn(t *testing.T) {
	if sdkBuiltIn() {
		t.Skip("this build has the SDK")
	}
	getenv := func(k string) string { return map[string]string{secret.TokenEnv: "ops_test"}[k] }
	_, err := openSecretBackend("sdk", "", getenv)
	var h *hintError
	if !errors.As(err, &h) || !strings.Contains(h.hint, "-tags sdk") {
		t.Errorf("--backend sdk: %v", err)
	}
	if _, ok := sdkBackend("auto", envmap.Token{}); ok {
		t.Error("auto chose the resolver without the SDK")
	}
	var stderr bytes.Buffer
	if code := runSecretResolverd([]string{"--backend", "sdk"}, stdio{err: &stderr}, getenv); code == 0 || !strings.Contains(stderr.String(), "not built into this rssh") {
		t.Errorf("resolverd without the SDK: %d %q", code, stderr.String())
	}
}

type stubBackend struct {
	name  string
	err   error
	calls int
}

func (s *stubBackend) Name() string { return s.name }
func (s *stubBackend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	return [][]byte{[]byte(s.name)}, nil
}

// auto with the SDK: the resolver; op only when the resolver cannot run at
// all, never when 1Password itself failed.
func TestFallbackBackend(t *testing.T) {
	op := &stubBackend{name: "op"}
	second := func() (secret.Backend, error) { return op, nil }
	for _, c := range []struct {
		err    error
		want   string
		wantOp int
	}{
		{nil, "sdk", 0},
		{&secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: starting the daemon: x"}, "op", 1},
		{&secret.Error{Kind: secret.ErrTransient, Msg: "cannot reach 1Password"}, "", 0},
	} {
		op.calls = 0
		f := &fallbackBackend{primary: &stubBackend{name: "sdk", err: c.err}, second: second}
		v, err := f.ResolveAll(context.Background(), []string{"op://v/i/f"})
		if c.want == "" {
			if !errors.Is(err, secret.ErrTransient) {
				t.Errorf("%v: got %v", c.err, err)
			}
		} else if err != nil || string(v[0]) != c.want {
			t.Errorf("%v: got %q %v, want %s", c.err, v, err, c.want)
		}
		if op.calls != c.wantOp {
			t.Errorf("%v: op called %d times", c.err, op.calls)
		}
	}
}

// rssh built with -tags sdk, offline (HTTPS_PROXY at a closed port, so
// every sign-in fails at once): `secret read` with auto starts one
// resolver daemon for the session, with the token on its pipe, and the
// next read reuses it without compiling the core again; --backend sdk
// resolves in-process and starts none. Nothing here reaches 1Password.
func TestSecretReadThroughResolverSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rssh with the SDK and compiles its core: slow")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "rssh-sdk")
	if out, err := exec.Command("go", "build", "-tags", "sdk", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags sdk: %v\n%s", err, out)
	}
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o700)
	token := "ops_" + base64.RawURLEncoding.EncodeToString([]byte(`{"signInAddress":"rssh-test.1password.com","userAuth":{"method":"SRPg-4096","alg":"PBES2g-HS256","iterations":650000,"salt":"AAAAAAAAAAAAAAAAAAAAAA"},"email":"t@1passwordserviceaccounts.com","srpX":"`+
		strings.Repeat("ab", 32)+`","muk":{"alg":"A256GCM","ext":true,"k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","key_ops":["encrypt","decrypt"],"kty":"oct","kid":"mp"},"secretKey":"A3-ABCDEF-GHJKLM-NPQRS-TVWXY-Z2345-67892","throttleSecret":{"seed":"`+
		strings.Repeat("cd", 32)+`","uuid":"abcdefghjkmnpqrstvwxyz2345"},"deviceUuid":"abcdefghjkmnpqrstvwxyz2345"}`))
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	proxy := "http://" + closed.Addr().String()
	closed.Close()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "XDG_RUNTIME_DIR", "RSSH_SECRET_BACKEND", secret.TokenEnv:
			continue
		}
		env = append(env, kv)
	}
	env = append(env, secret.TokenEnv+"="+token, "HTTPS_PROXY="+proxy, "XDG_RUNTIME_DIR="+run)
	read := func(args ...string) (string, time.Duration) {
		cmd := exec.Command(bin, append([]string{"secret", "read"}, args...)...)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("secret read %v succeeded offline: %s", args, out)
		}
		return string(out), time.Since(start)
	}
	daemons := func() []int {
		var pids []int
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && strings.HasPrefix(string(b), bin+"\x00secret\x00resolverd\x00") {
				var pid int
				fmt.Sscan(e.Name(), &pid)
				pids = append(pids, pid)
			}
		}
		return pids
	}
	t.Cleanup(func() {
		for _, pid := range daemons() {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	})
	const ref = "op://SA - test/GitHub CLI Token/credential"
	out1, d1 := read(ref)
	out2, d2 := read(ref)
	t.Logf("first %v, second %v:\n%s", d1, d2, out2)
	for _, out := range []string{out1, out2} {
		if !strings.Contains(out, "cannot reach 1Password") || !strings.Contains(out, "rssh: hint:") {
			t.Errorf("unclear offline error: %s", out)
		}
		if strings.Contains(out, token[4:40]) {
			t.Errorf("the token in an error: %s", out)
		}
	}
	pids := daemons()
	if len(pids) != 1 {
		t.Fatalf("want one resolver daemon for the session, found %v", pids)
	}
	if d2 > 5*time.Second || d2 > d1/2 {
		t.Errorf("the second read took %v (the first %v): the core was compiled again?", d2, d1)
	}
	for _, f := range []string{"cmdline", "environ"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pids[0], f))
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("the token is in the daemon's %s", f)
		}
	}
	socks, _ := filepath.Glob(filepath.Join(run, "rssh", "*.sock"))
	if len(socks) != 1 {
		t.Fatalf("sockets: %v", socks)
	}
	if st, err := os.Stat(socks[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", st.Mode(), err)
	}
	// --backend sdk: in this process, no daemon.
	out3, d3 := read("--backend", "sdk", ref)
	t.Logf("--backend sdk: %v: %s", d3, out3)
	if !strings.Contains(out3, "cannot reach 1Password") {
		t.Errorf("--backend sdk offline: %s", out3)
	}
	if p := daemons(); len(p) != 1 || p[0] != pids[0] {
		t.Errorf("--backend sdk touched the daemons: %v", p)
	}
	// SIGTERM: the daemon exits and takes its socket.
	syscall.Kill(pids[0], syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(socks[0]); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon's socket outlived SIGTERM")
		}
		time.Sleep(20 * time.Millisecond) // polling another process's exit
	}
}
