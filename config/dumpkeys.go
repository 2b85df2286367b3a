package config

import (
	"math"
	"strconv"
	"strings"
)

// The keywords rssh parses but does not act on (X11, GSSAPI, connection
// sharing, tunnels, …) are kept as given so that -G prints every key
// OpenSSH 9.2's ssh -G prints, with ssh's defaults and ssh's rendering of
// each value. Their arguments were validated by keepIgnored (process.go).

// keep records a kept keyword's arguments: the first active line wins, as
// in readconf.c, with its quirks: StreamLocalBindMask is set from every
// line, active or not (the last wins), SyslogFacility from the first line
// active or not, LogVerbose keeps one argument, and a "none" time leaves
// the option unset.
func (r *resolver) keep(keyword string, k kind, args []string, str string, act bool) {
	o := r.o
	if k == kAny {
		return // deprecated or unsupported: ssh -G does not print them
	}
	if o.kept == nil {
		o.kept = map[string][]string{}
	}
	if k == kCommand {
		args = []string{strings.TrimLeft(str, whitespace+"=")}
	}
	switch keyword {
	case "streamlocalbindmask":
		o.kept[keyword] = args
		return
	case "syslogfacility":
		// Set from the first line, active or not.
		if _, ok := o.kept[keyword]; !ok {
			o.kept[keyword] = args
		}
		return
	}
	if !act {
		return
	}
	switch keyword {
	case "logverbose":
		// 9.2 keeps only the first argument of the first active line
		// (its "*uintptr == 0" test sits inside the loop).
		if _, ok := o.kept[keyword]; !ok && len(args) > 0 {
			o.kept[keyword] = args[:1]
		}
		return
	case "rekeylimit":
		// The limit and the interval are two options, each first-wins;
		// an interval of "none" leaves the interval unset.
		k := o.kept[keyword]
		if k == nil {
			k = []string{"", ""}
		}
		if k[0] == "" && len(args) > 0 {
			k[0] = args[0]
		}
		if k[1] == "" && len(args) > 1 && args[1] != "none" {
			k[1] = args[1]
		}
		o.kept[keyword] = k
		return
	}
	if k == kTime && len(args) > 0 && args[0] == "none" {
		return // parse_time stores -1 for none: still unset
	}
	if _, ok := o.kept[keyword]; !ok {
		o.kept[keyword] = args
	}
}

// keptArg is a kept keyword's first argument, "" when unset.
func (o *options) keptArg(keyword string) string {
	if a := o.kept[keyword]; len(a) > 0 {
		return a[0]
	}
	return ""
}

// keptString is a kept string option as ssh -G prints it; ok is false when
// it is unset or, for those fill_default_options clears, "none".
func (o *options) keptString(keyword string, def string, clearNone bool) (string, bool) {
	v := o.keptArg(keyword)
	if v == "" {
		v = def
	}
	if v == "" || clearNone && strings.EqualFold(v, "none") {
		return "", false
	}
	return v, true
}

// keptMulti renders a kept yes/no or multi-state keyword as fmt_intarg.
func (o *options) keptMulti(keyword string, m []multi, def int) string {
	v := def
	if a := o.keptArg(keyword); a != "" {
		if n, ok := parseMulti(a, m); ok {
			v = n
		}
	}
	return fmtMulti(v, m)
}

var (
	multiYesNoAsk      = []multi{{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"ask", 2}}
	multiControlMaster = []multi{{"true", 1}, {"yes", 1}, {"false", 0}, {"no", 0},
		{"auto", 3}, {"ask", 2}, {"autoask", 4}}
	multiTunnel = []multi{{"ethernet", 2}, {"point-to-point", 1}, {"true", 1}, {"yes", 1},
		{"false", 0}, {"no", 0}}
	// fingerprintHashes are ssh_digest_alg_name's names by digest number.
	fingerprintHashes = []multi{{"MD5", 0}, {"SHA1", 1}, {"SHA256", 2}, {"SHA384", 3}, {"SHA512", 4}}
	// syslogFacilities are log.c's, Linux having LOG_AUTHPRIV.
	syslogFacilities = []multi{{"DAEMON", 0}, {"USER", 1}, {"AUTH", 2}, {"AUTHPRIV", 3},
		{"LOCAL0", 4}, {"LOCAL1", 5}, {"LOCAL2", 6}, {"LOCAL3", 7}, {"LOCAL4", 8},
		{"LOCAL5", 9}, {"LOCAL6", 10}, {"LOCAL7", 11}}
	// ipqosTable is misc.c's table, in its order (iptos2str prints the
	// first name of a value).
	ipqosTable = []multi{{"none", math.MaxInt32}, {"af11", 0x28}, {"af12", 0x30}, {"af13", 0x38},
		{"af21", 0x48}, {"af22", 0x50}, {"af23", 0x58}, {"af31", 0x68}, {"af32", 0x70},
		{"af33", 0x78}, {"af41", 0x88}, {"af42", 0x90}, {"af43", 0x98}, {"cs0", 0x00},
		{"cs1", 0x20}, {"cs2", 0x40}, {"cs3", 0x60}, {"cs4", 0x80}, {"cs5", 0xa0},
		{"cs6", 0xc0}, {"cs7", 0xe0}, {"ef", 0xb8}, {"le", 0x04}, {"lowdelay", 0x10},
		{"throughput", 0x08}, {"reliability", 0x04}}
)

// iptos2str names an IP TOS value as ssh -G prints it.
func iptos2str(v int) string {
	for _, e := range ipqosTable {
		if e.val == v {
			return e.key
		}
	}
	return "0x" + strconv.FormatInt(int64(v)|0x100, 16)[1:]
}

// dumpIPQoS renders IPQoS: one value sets both. Debian's ssh defaults
// to lowdelay/throughput (upstream: af21/cs1).
func (o *options) dumpIPQoS() string {
	a := o.kept["ipqos"]
	inter, bulk := 0x10, 0x08
	if len(a) > 0 {
		if v := parseIPQoS(a[0]); v != -1 {
			inter, bulk = v, v
		}
		if len(a) > 1 {
			if v := parseIPQoS(a[1]); v != -1 {
				bulk = v
			}
		}
	}
	return iptos2str(inter) + " " + iptos2str(bulk)
}

// dumpRekeyLimit renders "rekeylimit BYTES SECONDS".
func (o *options) dumpRekeyLimit() string {
	limit, interval := uint64(0), 0
	if a := o.kept["rekeylimit"]; a != nil {
		if a[0] != "" && a[0] != "default" {
			if n, e := scanScaled(a[0]); e == "" && n > 0 {
				limit = uint64(n)
			}
		}
		if a[1] != "" {
			if v := convtime(a[1]); v > 0 {
				interval = v
			}
		}
	}
	return strconv.FormatUint(limit, 10) + " " + strconv.Itoa(interval)
}

// dumpControlPersist renders ControlPersist: yes/no, or its timeout.
func (o *options) dumpControlPersist() string {
	switch a := o.keptArg("controlpersist"); a {
	case "", "no", "false":
		return "no"
	case "yes", "true":
		return "yes"
	default:
		if v := convtime(a); v > 0 {
			return strconv.Itoa(v)
		}
		return "yes"
	}
}

// a2tun is misc.c's a2tun for one side: "any" or 0-0x7ffffffd.
func a2tun(s string) (string, bool) {
	if strings.EqualFold(s, "any") {
		return "any", true
	}
	n, e := strtonum(s, 0, math.MaxInt32-2)
	if e != "" {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// dumpTunnelDevice renders TunnelDevice local[:remote].
func (o *options) dumpTunnelDevice() string {
	local, remote := "any", "any"
	if a := o.keptArg("tunneldevice"); a != "" {
		l, r, hasRemote := strings.Cut(a, ":")
		lv, ok1 := a2tun(l)
		rv, ok2 := "any", true
		if hasRemote {
			rv, ok2 = a2tun(r)
		}
		if ok1 && ok2 {
			local, remote = lv, rv
		}
	}
	return local + ":" + remote
}

// dumpStreamLocalBindMask renders the mask in octal with a leading 0, as
// strtol(arg, &end, 8) read it.
func (o *options) dumpStreamLocalBindMask() string {
	v := int64(0o177)
	if a := o.keptArg("streamlocalbindmask"); a != "" {
		t := strings.TrimLeft(a, " \t\n\v\f\r")
		neg := false
		if t != "" && (t[0] == '+' || t[0] == '-') {
			neg = t[0] == '-'
			t = t[1:]
		}
		end := 0
		for end < len(t) && t[end] >= '0' && t[end] <= '7' {
			end++
		}
		if n, err := strconv.ParseInt(t[:end], 8, 64); err == nil && !neg && n <= 0o777 {
			v = n
		}
	}
	return "0" + strconv.FormatInt(v, 8)
}

// dumpNamed renders a kept keyword whose value is a name from a table
// (compared case-insensitively) as the table's canonical name.
func (o *options) dumpNamed(keyword string, m []multi, def int) string {
	v := def
	if a := o.keptArg(keyword); a != "" {
		if n, ok := parseMulti(a, m); ok {
			v = n
		}
	}
	return fmtMulti(v, m)
}

// dumpOneLine renders a kept list keyword on one line, "none" (or any,
// for PermitRemoteOpen) when unset.
func (o *options) dumpOneLine(keyword, def string) string {
	a := o.kept[keyword]
	if len(a) == 0 {
		return def
	}
	return strings.Join(a, " ")
}

// defaultUpdateHostKeys is fill_default_options' UpdateHostKeys: yes
// unless VerifyHostKeyDNS is on or UserKnownHostsFile names anything but
// ~/.ssh/known_hosts alone. It runs before the known-hosts defaults.
func (o *options) defaultUpdateHostKeys() int {
	verify := 0
	if a := o.keptArg("verifyhostkeydns"); a != "" {
		verify, _ = parseMulti(a, multiYesNoAsk)
	}
	if verify <= 0 && (len(o.userHosts) == 0 || len(o.userHosts) == 1 && o.userHosts[0] == "~/.ssh/known_hosts") {
		return 1
	}
	return 0
}

// dumpCNAMEs renders CanonicalizePermittedCNAMEs as source:target pairs,
// lowercased, "*" meaning "*:*".
func dumpCNAMEs(list []string) string {
	if !hasPermittedCNAMEs(list) {
		return "none"
	}
	out := make([]string, len(list))
	for i, a := range list {
		if a == "*" {
			out[i] = "*:*"
		} else {
			out[i] = asciiLower(a)
		}
	}
	return strings.Join(out, " ")
}

// Defaults of OpenSSH 9.2 as Debian 12 builds it.
const (
	defXAuthLocation = "/usr/bin/xauth"
	defGSSKexAlgs    = "gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-," +
		"gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-"
	// allSigs is sshkey_alg_list(0, 1, 1): the plain key types,
	// signature-only names included; defSigs is SSH_ALLOWED_CA_SIGALGS.
	allSigs = "ssh-ed25519,sk-ssh-ed25519@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384," +
		"ecdsa-sha2-nistp521,sk-ecdsa-sha2-nistp256@openssh.com," +
		"webauthn-sk-ecdsa-sha2-nistp256@openssh.com,ssh-dss,ssh-rsa,rsa-sha2-256,rsa-sha2-512"
	defSigs = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," +
		"sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)

// assembleKept is kex_assemble_names on a kept algorithm list.
func (o *options) assembleKept(keyword, def, all string) string {
	v, ok := kexAssemble(o.keptArg(keyword), def, all)
	if !ok {
		return def
	}
	return v
}

// dumpTime renders a kept time value in seconds ("none" leaves the
// default, as parse_time stores -1 for it).
func (o *options) dumpTime(keyword string, def int) string {
	v := def
	if a := o.keptArg(keyword); a != "" && a != "none" {
		if n := convtime(a); n != -1 {
			v = n
		}
	}
	return strconv.Itoa(v)
}

// dumpInt renders a kept integer.
func (o *options) dumpInt(keyword string, def int) string {
	v := def
	if a := o.keptArg(keyword); a != "" {
		if n, e := strtonum(a, 0, math.MaxInt32); e == "" {
			v = int(n)
		}
	}
	return strconv.Itoa(v)
}

// keptFlag renders a kept yes/no keyword as yes or no.
func (o *options) keptFlag(keyword string, def int) string {
	v := def
	if a := o.keptArg(keyword); a != "" {
		if n, ok := parseMulti(a, multiFlag); ok {
			v = n
		}
	}
	return fmtFlag(v)
}

// tidyUpdateHostKeys is ssh.c's check before -G: UpdateHostKeys=ask is
// turned off with ControlPersist and a ControlPath, with a remote command
// or RequestTTY no, and below LogLevel INFO.
func (o *options) tidyUpdateHostKeys(hasCommand bool) {
	if v, _ := parseMulti(o.keptArg("updatehostkeys"), multiYesNoAsk); v != 2 {
		return
	}
	_, controlPath := o.keptString("controlpath", "", true)
	if o.dumpControlPersist() != "no" && controlPath ||
		hasCommand || o.remoteCommand != nil || o.requestTTY == ttyNo ||
		o.logLevel < 3 {
		o.kept["updatehostkeys"] = []string{"no"}
	}
}
