package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
	"github.com/rssh/rssh/secret/unit"
)

// tmpfsMagic is statfs's f_type of tmpfs.
const tmpfsMagic = 0x01021994

// systemdPID1 says why a unit cannot be started here, or "" if it can.
func systemdPID1() string {
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		return fmt.Sprintf("cannot read /proc/1/comm: %v", err)
	}
	if c := strings.TrimSpace(string(comm)); c != "systemd" {
		return fmt.Sprintf("systemd is not PID 1 on this machine (PID 1 is %q): a unit cannot be started here; this test runs on a host booted with systemd", c)
	}
	if os.Geteuid() != 0 {
		return "starting system units needs root"
	}
	return ""
}

// Acceptance 5: the fetch unit `rssh secret systemd-unit` writes, started
// by systemd (PID 1) as the dependency of a consuming service, leaves the
// env file in /run (tmpfs) with modes 0700/0400, the consumer reads the
// exact values through EnvironmentFile=, nothing is written to disk, and
// stopping the unit removes the file. The units go to /run/systemd/system
// (runtime units, gone at reboot) and are removed afterwards. It skips,
// even under CI=true, only where systemd is not PID 1.
func TestSystemdUnitStarts(t *testing.T) {
	if why := systemdPID1(); why != "" {
		t.Skip(why)
	}
	systemctl := testenv.Need(t, "systemctl", "systemd")
	var st syscall.Statfs_t
	if err := syscall.Statfs("/run", &st); err != nil || st.Type != tmpfsMagic {
		t.Fatalf("/run is not tmpfs on a host with systemd as PID 1 (statfs: %v, type %#x)", err, st.Type)
	}
	b := make([]byte, 4)
	rand.Read(b)
	id := "rssh-test-" + hex.EncodeToString(b)
	consumer := id + "-consumer.service"

	mark := filepath.Join(t.TempDir(), "X")
	tricky := testenv.TrickyValues(mark)
	values := map[string][]byte{}
	refs := map[string]string{}
	for k, v := range tricky {
		key := "V_" + strings.ToUpper(k)
		values[key] = v
		refs[key] = "op://SA - test/" + k + "/credential"
	}
	opValues := map[string][]byte{}
	for k, r := range refs {
		opValues[r] = values[k]
	}
	op := testenv.NewFakeSecretOp(t, opValues)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(op.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The test binary is rssh when run by that name (TestMain).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rssh := filepath.Join(t.TempDir(), "rssh")
	if err := os.Symlink(self, rssh); err != nil {
		t.Fatal(err)
	}

	spec := &unit.Spec{Name: id, Before: []string{consumer}, TokenCredential: tokenFile, RSSH: rssh}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range refs {
			if !yield(k) {
				return
			}
		}
	}) {
		spec.Secrets = append(spec.Secrets, unit.Secret{Key: k, Ref: refs[k]})
	}
	files, err := spec.Files()
	if err != nil {
		t.Fatal(err)
	}
	// The consumer writes each value it got into its own runtime directory.
	seen := "/run/" + id + "-consumer"
	var script strings.Builder
	for k := range values {
		fmt.Fprintf(&script, "printf %%s \"$%s\" > %s/%s\n", k, seen, k)
	}
	e := func(k, v string) unit.Entry { return unit.Entry{Key: k, Value: v} }
	files = append(files, unit.File{Path: consumer, Sections: []unit.Section{{Name: "Service", Entries: []unit.Entry{
		e("Type", "oneshot"), e("RemainAfterExit", "yes"), e("RuntimeDirectory", id+"-consumer"),
		e("ExecStart", unit.Command("/bin/sh", "-c", script.String())),
	}}}})
	// The fake op and the test binary live in /tmp, which the unit's
	// PrivateTmp would hide: only for this test, the unit sees the real /tmp.
	files = append(files, unit.File{Path: spec.FetchUnit() + ".d/test.conf", Sections: []unit.Section{{Name: "Service", Entries: []unit.Entry{
		e("Environment", unit.Quote("PATH="+op.Dir+":/usr/bin:/bin")), e("Environment", "RSSH_SECRET_BACKEND=op"), e("PrivateTmp", "no"),
	}}}})
	var written []string
	t.Cleanup(func() {
		exec.Command(systemctl, "stop", consumer, spec.FetchUnit()).Run()
		for _, p := range slices.Backward(written) {
			os.Remove(p)
		}
		exec.Command(systemctl, "daemon-reload").Run()
	})
	for _, f := range files {
		p := filepath.Join("/run/systemd/system", f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(f.Path) != "." {
			written = append(written, filepath.Dir(p))
		}
		if err := os.WriteFile(p, []byte(f.Text("# rssh test\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		written = append(written, p)
	}
	systemd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(systemctl, args...).CombinedOutput(); err != nil {
			status, _ := exec.Command(systemctl, "status", "--no-pager", spec.FetchUnit(), consumer).CombinedOutput()
			journal, _ := exec.Command("journalctl", "--no-pager", "-n", "50", "-u", spec.FetchUnit()).CombinedOutput()
			t.Fatalf("systemctl %s: %v\n%s\n%s\n%s", strings.Join(args, " "), err, out, status, journal)
		}
	}
	systemd("daemon-reload")
	systemd("start", consumer) // pulls in the fetch unit through the drop-in's Requires=

	envFile := spec.Out
	fi, err := os.Stat(envFile)
	if err != nil {
		t.Fatalf("the fetch left no %s: %v", envFile, err)
	}
	di, _ := os.Stat(filepath.Dir(envFile))
	if fi.Mode().Perm() != 0o400 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes: file %v, dir %v; want 0400 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
	for k, v := range values {
		got, err := os.ReadFile(filepath.Join(seen, k))
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("the consumer got %s=%q (%v), want %q", k, got, err, v)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("a shell ran part of a value (%s exists)", mark)
	}
	op.CheckRuns(t)
	onDisk := map[string]string{}
	for k, v := range values {
		first, _, _ := bytes.Cut(v, []byte("\n"))
		onDisk[k] = string(first)
	}
	testenv.ScanForSecrets(t, onDisk, "/etc/systemd", "/var/tmp", "/var/lib/systemd", "/var/log")
	systemd("stop", consumer, spec.FetchUnit())
	if _, err := os.Stat(envFile); err == nil {
		t.Errorf("%s outlived its unit", envFile)
	}
}

// splitExec is systemd's reading of an Exec line as unit.Command writes
// it: %% and $$ undoubled, words split at spaces, double-quoted words
// with \\ and \" escapes.
func splitExec(t *testing.T, line string) []string {
	t.Helper()
	line = strings.ReplaceAll(line, "%%", "%")
	var words []string
	for i := 0; i < len(line); {
		switch {
		case line[i] == ' ':
			i++
		case line[i] == '"':
			var w strings.Builder
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				w.WriteByte(line[i])
			}
			if i >= len(line) {
				t.Fatalf("unterminated quote in %q", line)
			}
			i++
			words = append(words, strings.ReplaceAll(w.String(), "$$", "$"))
		default:
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			words = append(words, strings.ReplaceAll(line[i:i+j], "$$", "$"))
			i += j
		}
	}
	return words
}

// Where systemd cannot start the units, their commands still run as
// systemd would run them: the Exec lines of the fetch and render units
// read back to argv, run with the token as a credential in
// $CREDENTIALS_DIRECTORY and the runtime directories made 0700. rssh
// secret fetch and inject accept every flag the units give them, and the
// env file reads back through systemd's own EnvironmentFile= parser as
// the exact values. Only the directories move: /run is not tmpfs on these
// machines, so they go under /dev/shm.
func TestSystemdUnitCommandsRun(t *testing.T) {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != tmpfsMagic {
		t.Skipf("/dev/shm is not tmpfs here")
	}
	b := make([]byte, 4)
	rand.Read(b)
	id := "rssh-test-" + hex.EncodeToString(b)
	shm := filepath.Join("/dev/shm", id)
	t.Cleanup(func() { os.RemoveAll(shm) })

	mark := filepath.Join(t.TempDir(), "X")
	values := map[string][]byte{}
	opValues := map[string][]byte{}
	spec := &unit.Spec{Name: id, Before: []string{"consumer.service"}, TokenCredential: "/etc/credstore/op-sa"}
	for k, v := range testenv.TrickyValues(mark) {
		key := "V_" + strings.ToUpper(k)
		ref := "op://SA - test/" + k + "/credential"
		values[key], opValues[ref] = v, v
		spec.Secrets = append(spec.Secrets, unit.Secret{Key: key, Ref: ref})
	}
	unit.SortSecrets(spec.Secrets)
	tpl := filepath.Join(t.TempDir(), "config.tpl")
	os.WriteFile(tpl, []byte("key: {{ op://SA - test/subst/credential }}\n"), 0o644)
	spec.Templates = []unit.Template{{Name: "config.yaml", Source: tpl}}
	op := testenv.NewFakeSecretOp(t, opValues)
	creds := t.TempDir()
	os.WriteFile(filepath.Join(creds, unit.Credential), []byte(op.Token+"\n"), 0o400)
	self, _ := os.Executable()
	spec.RSSH = filepath.Join(t.TempDir(), "rssh")
	if err := os.Symlink(self, spec.RSSH); err != nil {
		t.Fatal(err)
	}
	files, err := spec.Files()
	if err != nil {
		t.Fatal(err)
	}
	env := op.Env([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "CREDENTIALS_DIRECTORY=" + creds, "RSSH_SECRET_BACKEND=op"})
	for _, f := range files[:2] { // the fetch unit and the render unit
		svc := map[string][]string{}
		for _, s := range f.Sections {
			for _, e := range s.Entries {
				if s.Name == "Service" {
					svc[e.Key] = append(svc[e.Key], e.Value)
				}
			}
		}
		if got := svc["LoadCredential"]; len(got) != 1 || got[0] != unit.Credential+":/etc/credstore/op-sa" {
			t.Fatalf("%s: LoadCredential=%q", f.Path, got)
		}
		rd := filepath.Join(shm, svc["RuntimeDirectory"][0])
		if err := os.MkdirAll(rd, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, line := range svc["ExecStart"] {
			argv := splitExec(t, line)
			for i, a := range argv {
				argv[i] = strings.ReplaceAll(a, "/run/", shm+"/")
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %q: %v\n%s", f.Path, argv, err, out)
			}
		}
	}
	envFile := strings.ReplaceAll(spec.Out, "/run/", shm+"/")
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	got := testenv.ParseSystemdEnvFile(data)
	for k, v := range values {
		if got[k] != string(v) {
			t.Errorf("systemd reads %s=%q, want %q", k, got[k], v)
		}
	}
	if fi, _ := os.Stat(envFile); fi.Mode().Perm() != 0o400 {
		t.Errorf("env file mode %v", fi.Mode().Perm())
	}
	rendered, err := os.ReadFile(filepath.Join(strings.ReplaceAll(spec.TemplateDir, "/run/", shm+"/"), "config.yaml"))
	if err != nil || string(rendered) != "key: "+string(values["V_SUBST"])+"\n" {
		t.Errorf("rendered template %q (%v)", rendered, err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("a shell ran part of a value (%s exists)", mark)
	}
	op.CheckRuns(t)
}
