package config

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// sshBadLine is how ssh reports a bad config line: "FILE line N: msg" or
// "FILE: line N: msg" (Bad configuration option).
var sshBadLine = regexp.MustCompile(`^(.*?):? line (\d+): (.*)$`)

// normSSHMsg puts ssh's message in rssh's voice: first letter lowercase,
// no trailing period.
func normSSHMsg(m string) string {
	m = strings.TrimSuffix(m, ".")
	if m != "" {
		m = strings.ToLower(m[:1]) + m[1:]
	}
	return m
}

// Every bad line of a file is reported, as ssh reports it (file, line,
// ssh's words), then "FILE: terminating, N bad configuration options";
// both exit 255. Each case runs the real ssh -G on the same files.
func TestBadOptionsAsSSH(t *testing.T) {
	sshPath := requireSSH(t)
	tests := []struct {
		name  string
		files map[string]string // "config" is -F; $TMP is the temp dir
	}{
		{"several bad lines", map[string]string{"config": "User a\nBogus yes\nPort 70000\nHost x\n  Foo 1\nBatchMode maybe\nUser a b\nHostName\n"}},
		{"one bad line", map[string]string{"config": "Host *\n  ForwardX11 sometimes\n"}},
		{"bad lines in blocks that do not apply", map[string]string{"config": "Host other\n  Port 0\n  Compression maybe\nHost *\n  User u\n"}},
		{"bad values of kept keys", map[string]string{"config": "ControlMaster never\nTunnel maybe\nVerifyHostKeyDNS sometimes\nCheckHostIP perhaps\nForwardX11Timeout 5x\nRequiredRSASize big\n"}},
		{"quotes and extra arguments", map[string]string{"config": "User \"abc\nHostName a b\nIdentitiesOnly yes no\n"}},
		{"included file with bad lines", map[string]string{
			"config": "Bogus1 x\nInclude $TMP/inc\nBogus2 y\n",
			"inc":    "Port x\nFoo 1\nBar 2\n",
		}},
		// One bad line of each kind rssh checks (the values of keywords
		// rssh only keeps for -G are checked elsewhere).
		{"sweep", map[string]string{"config": "Port\nPort 0\nPort abc\nUser\nHostName\nCiphers aes128-ctr,rot13\nMACs hmac-foo\nKexAlgorithms foo\nHostKeyAlgorithms foo\nPubkeyAcceptedAlgorithms foo\nLogLevel loud\nConnectTimeout\nConnectTimeout 5x\nServerAliveInterval -1\nServerAliveCountMax x\nConnectionAttempts 99999999999\nNumberOfPasswordPrompts -1\nEscapeChar ab\nAddKeysToAgent maybe\nAddKeysToAgent confirm xx\nIdentityFile\nCertificateFile\nLocalForward 80\nLocalForward a b\nRemoteForward x:y:z\nDynamicForward a:b:c\nSendEnv A=B\nSetEnv NOEQ\nProxyJump u@h:0\nIdentityAgent ${NOPE\nUserKnownHostsFile a none\nCanonicalDomains a none\nCanonicalizePermittedCNAMEs bad\nCanonicalizeMaxDots x\nStreamLocalBindMask\nPermitRemoteOpen\nLogVerbose a none\nRequestTTY sometimes\nSessionType x\nPubkeyAuthentication maybe\nCompression maybe\nStrictHostKeyChecking perhaps\nAddressFamily inet7\nInclude\nGSSAPIAuthentication x\nForwardX11 x\nTunnel x\nRequiredRSASize x\n"}},
		{"UseKeychain off Apple", map[string]string{"config": "Host *\n  UseKeychain yes\n  AddKeysToAgent yes\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "UseKeychain") && runtime.GOOS == "darwin" {
				t.Skip("Apple's ssh and rssh built for darwin accept UseKeychain (TestUseKeychainByPlatform)")
			}
			tmp := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(tmp, name), []byte(strings.ReplaceAll(content, "$TMP", tmp)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(tmp, "config")
			cmd := exec.Command(sshPath, "-G", "-F", cfg, "h")
			cmd.Env = append(os.Environ(), "HOME="+tmp)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 255 {
				t.Fatalf("ssh -G: %v, want exit 255:\n%s", err, out)
			}
			var want []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				l = strings.TrimRight(l, "\r") // ssh ends its log lines with CR LF
				if m := sshBadLine.FindStringSubmatch(l); m != nil {
					want = append(want, fmt.Sprintf("%s:%s: %s", m[1], m[2], normSSHMsg(m[3])))
				} else if strings.Contains(l, "terminating") {
					want = append(want, l)
				}
			}

			_, rerr := Resolve(Request{Host: "h", ConfigFile: cfg, Home: tmp, EnvHome: tmp, LocalUser: "tester"})
			var bad *BadOptions
			if !errors.As(rerr, &bad) {
				t.Fatalf("Resolve error = %v, want *BadOptions (ssh said:\n%s)", rerr, out)
			}
			var got []string
			for _, e := range bad.Errs {
				got = append(got, e.Error())
			}
			got = append(got, bad.Terminating())
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("reported (- ssh, + rssh):\n%s", diffLines(want, got))
			}
		})
	}
}

// Options given with -o are checked one at a time and the first bad one
// ends ssh (exit 255) with no count: so does Resolve.
func TestBadCommandLineOptionFirstOnly(t *testing.T) {
	_, err := Resolve(Request{Host: "h", Options: []string{"Bogus 1", "Port 0"}, ConfigFile: "none", Home: "/nonexistent", EnvHome: "/nonexistent", LocalUser: "tester"})
	var ce *Error
	var bad *BadOptions
	if !errors.As(err, &ce) || errors.As(err, &bad) || ce.Pos.File != "command-line" || ce.Msg != "bad configuration option: bogus" {
		t.Fatalf("Resolve error = %#v, want the first -o error alone", err)
	}
}
