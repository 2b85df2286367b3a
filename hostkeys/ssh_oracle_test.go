package hostkeys

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/internal/testenv"
)

// TestCheckMatchesOpenSSH runs a real sshd and asks the real ssh, with
// StrictHostKeyChecking=yes and one known_hosts file per case, whether it
// trusts the host key; Check must reach the same verdict on the same file.
// The host-key algorithm is forced so the key the server shows is known.
func TestCheckMatchesOpenSSH(t *testing.T) {
	sshBin, sshdBin := needOpenSSH(t)
	f := newFixture(t)
	_, ec := genKey(t, f.dir, "srv_ecdsa", "ecdsa")
	srvCert := signHost(t, f.caPriv, f.edPub, "-n", "127.0.0.1")

	port := freePort(t)
	cfg := filepath.Join(f.dir, "sshd_config")
	writeFile(t, cfg,
		fmt.Sprintf("Port %d", port),
		"ListenAddress 127.0.0.1",
		"HostKey "+f.edPriv,
		"HostKey "+filepath.Join(f.dir, "srv_ecdsa"),
		"HostCertificate "+f.edPriv+"-cert.pub",
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"AuthenticationMethods publickey",
		"AuthorizedKeysFile none",
	)
	ctx, cancel := context.WithCancel(context.Background())
	sshd := exec.CommandContext(ctx, sshdBin, "-D", "-e", "-f", cfg)
	var sshdLog strings.Builder
	sshd.Stderr = &sshdLog
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		sshd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", sshdLog.String())
		}
	})
	waitPort(t, port)

	ED, EC, CA, OT := authorized(f.ed), authorized(ec), authorized(f.ca), authorized(f.other)
	hp := fmt.Sprintf("[127.0.0.1]:%d", port)
	for _, c := range []struct {
		name  string
		alg   string
		alias string
		lines []string
	}{
		{"known", ssh.KeyAlgoED25519, "", []string{hp + " " + ED}},
		{"unknown", ssh.KeyAlgoED25519, "", []string{"elsewhere " + ED}},
		{"changed same type", ssh.KeyAlgoED25519, "", []string{hp + " " + OT}},
		{"changed other type", ssh.KeyAlgoED25519, "", []string{hp + " " + EC}},
		{"ecdsa known", ssh.KeyAlgoECDSA256, "", []string{hp + " " + EC, hp + " " + OT}},
		{"port-less retry", ssh.KeyAlgoED25519, "", []string{"127.0.0.1 " + ED}},
		{"port-less retry, other key", ssh.KeyAlgoED25519, "", []string{"127.0.0.1 " + OT}},
		{"wildcard and negation", ssh.KeyAlgoED25519, "", []string{"[127.0.0.*]:*,![127.0.0.2]:* " + ED}},
		{"negated", ssh.KeyAlgoED25519, "", []string{"[127.0.0.*]:*,!" + hp + " " + ED}},
		{"revoked", ssh.KeyAlgoED25519, "", []string{"@revoked * " + ED, hp + " " + ED}},
		{"revoked elsewhere", ssh.KeyAlgoED25519, "", []string{"@revoked elsewhere " + ED, hp + " " + ED}},
		{"alias", ssh.KeyAlgoED25519, "MyAlias", []string{"myalias " + ED}},
		{"alias has no port form", ssh.KeyAlgoED25519, "myalias", []string{fmt.Sprintf("[myalias]:%d ", port) + ED}},
		{"cert", ssh.CertAlgoED25519v01, "", []string{"@cert-authority * " + CA}},
		{"cert, CA for another host", ssh.CertAlgoED25519v01, "", []string{"@cert-authority elsewhere " + CA}},
		{"cert, CA unknown, plain key known", ssh.CertAlgoED25519v01, "", []string{hp + " " + ED}},
		{"cert, principal is not the alias", ssh.CertAlgoED25519v01, "alias", []string{"@cert-authority * " + CA}},
		{"cert, CA revoked", ssh.CertAlgoED25519v01, "", []string{"@cert-authority * " + CA, "@revoked * " + CA, hp + " " + ED}},
		{"cert, plain key revoked", ssh.CertAlgoED25519v01, "", []string{"@cert-authority * " + CA, "@revoked * " + ED}},
		{"garbage around", ssh.KeyAlgoED25519, "", []string{"garbage", "@bogus * " + ED, hp + " " + ED, "|1|x|y " + ED}},
	} {
		t.Run(c.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			writeFile(t, kh, c.lines...)
			want := sshVerdict(t, sshBin, kh, port, c.alg, c.alias)

			db, err := Load(kh)
			if err != nil {
				t.Fatal(err)
			}
			var key ssh.PublicKey = f.ed
			switch c.alg {
			case ssh.KeyAlgoECDSA256:
				key = ec
			case ssh.CertAlgoED25519v01:
				key = srvCert
			}
			name, p := "127.0.0.1", port
			if c.alias != "" {
				name, p = c.alias, 0
			}
			if got := db.Check(name, p, key).Status; got != want {
				t.Errorf("Check says %v, ssh says %v", got, want)
			}
		})
	}
}

// sshVerdict runs ssh against the server and reads its host-key decision
// from its messages. Authentication always fails (no key is authorized), so
// "Permission denied" means the host key was accepted.
func sshVerdict(t *testing.T, sshBin, kh string, port int, alg, alias string) Status {
	t.Helper()
	args := []string{"-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HostKeyAlgorithms=" + alg, "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null",
		"-o", "ConnectTimeout=10", "-o", "CheckHostIP=no",
		"-p", fmt.Sprint(port)}
	if alias != "" {
		args = append(args, "-o", "HostKeyAlias="+alias)
	}
	args = append(args, "127.0.0.1", "true")
	cmd := exec.Command(sshBin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, _ := cmd.CombinedOutput()
	s := string(out)
	switch {
	case strings.Contains(s, "REVOKED HOST KEY"):
		return Revoked
	case strings.Contains(s, "REMOTE HOST IDENTIFICATION HAS CHANGED"):
		return Changed
	case strings.Contains(s, "host key is known for"):
		return Unknown
	case strings.Contains(s, "Permission denied"):
		return Known
	}
	t.Fatalf("cannot read ssh's verdict:\n%s", s)
	return 0
}

func needOpenSSH(t *testing.T) (sshBin, sshdBin string) {
	t.Helper()
	needKeygen(t)
	return testenv.Need(t, "ssh", "openssh-client"), testenv.Need(t, "sshd", "openssh-server")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPort waits, with a deadline, until something accepts on the port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %d: %v", port, err)
		}
		<-time.After(20 * time.Millisecond) // poll interval; the deadline above bounds the wait
	}
}
