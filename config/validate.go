package config

import (
	"strconv"
	"strings"
)

// Keywords rssh does not act on but whose values OpenSSH 9.2 checks: a
// value ssh refuses is refused here too, with ssh's words, so a config
// never loads in one and fails in the other. Found by the differential
// test against ssh (integration/differential_test.go).

// checkValue validates the arguments of a kChecked keyword and consumes
// them; args beyond what the keyword takes are left for the caller's
// "extra arguments" check.
func checkValue(keyword string, av *[]string, pos Pos) error {
	args := *av
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	next := func() {
		if len(*av) > 0 {
			*av = (*av)[1:]
		}
	}
	switch keyword {
	case "rekeylimit":
		if first == "" {
			return errorf(pos, "missing argument")
		}
		if first != "default" {
			n, err := scanScaled(first)
			if err != "" {
				return errorf(pos, "bad number '%s': %s", first, err)
			}
			if n != 0 && n < 16 {
				return errorf(pos, "RekeyLimit too small")
			}
		}
		next()
		if len(*av) == 0 {
			return nil
		}
		t := (*av)[0]
		next()
		if t != "none" && convtime(t) == -1 {
			return errorf(pos, "invalid time value")
		}
	case "ipqos":
		if parseIPQoS(first) == -1 {
			return errorf(pos, "bad IPQoS value: %s", first)
		}
		next()
		if len(*av) > 0 {
			if parseIPQoS((*av)[0]) == -1 {
				return errorf(pos, "bad IPQoS value: %s", (*av)[0])
			}
			next()
		}
	case "syslogfacility":
		if !syslogFacility(first) {
			return errorf(pos, "unsupported log facility '%s'", orNone(first))
		}
		next()
	case "casignaturealgorithms", "hostbasedacceptedalgorithms", "hostbasedkeytypes":
		if first == "" {
			return errorf(pos, "missing argument")
		}
		n := first
		if n[0] == '+' || n[0] == '^' {
			n = n[1:]
		}
		if first[0] != '-' && !keyNamesValid(n) {
			return errorf(pos, "bad key types '%s'", first)
		}
		next()
	case "permitremoteopen":
		for i, a := range args {
			if strings.EqualFold(a, "none") || strings.EqualFold(a, "any") {
				if i > 0 || len(args) > 1 {
					return errorf(pos, "keyword %s \"%s\" argument must appear alone", keyword, a)
				}
				continue
			}
			// misc.c's hpdelim: only ':' separates (hpdelim2's '/' is refused).
			_, port, delim, ok := hpdelim2(a)
			if !ok || delim == '/' {
				return errorf(pos, "missing host in permitremoteopen")
			}
			if port == nil || (*port != "*" && a2port(*port) <= 0) {
				return errorf(pos, "bad port number in permitremoteopen")
			}
		}
		if len(args) == 0 {
			return errorf(pos, "missing permitremoteopen specification")
		}
		*av = nil
	case "controlpersist":
		if first == "" {
			return errorf(pos, "missing ControlPersist argument")
		}
		switch first {
		case "no", "false", "yes", "true":
		default:
			if convtime(first) < 0 {
				return errorf(pos, "bad ControlPersist argument")
			}
		}
		next()
	case "tunneldevice":
		if first == "" {
			return errorf(pos, "missing argument")
		}
		local, remote, _ := strings.Cut(first, ":")
		if !tunID(local) || strings.Contains(first, ":") && !tunID(remote) {
			return errorf(pos, "bad tun device")
		}
		next()
	case "streamlocalbindmask":
		if first == "" {
			return errorf(pos, "missing StreamLocalBindMask argument")
		}
		// strtol(arg, &end, 8): trailing junk is ignored, no digit is not.
		digits := strings.TrimLeft(first, " \t\n\v\f\r")
		if digits != "" && (digits[0] == '+' || digits[0] == '-') {
			digits = digits[1:]
		}
		n := len(digits) - len(strings.TrimLeft(digits, "01234567"))
		v, ok := strtolPrefix(first[:len(first)-len(digits)+n], 8)
		if !ok || v < 0 || v > 0o777 {
			return errorf(pos, "bad mask")
		}
		next()
	case "fingerprinthash":
		if first == "" {
			return errorf(pos, "missing argument")
		}
		switch strings.ToUpper(first) {
		case "MD5", "SHA1", "SHA256", "SHA384", "SHA512":
		default:
			return errorf(pos, "invalid hash algorithm \"%s\"", first)
		}
		next()
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "<NONE>"
	}
	return s
}

// ipqosNames are misc.c's ipqos[] names.
var ipqosNames = map[string]int{
	"none": 1<<31 - 1, "af11": 0x28, "af12": 0x30, "af13": 0x38, "af21": 0x48, "af22": 0x50,
	"af23": 0x58, "af31": 0x68, "af32": 0x70, "af33": 0x78, "af41": 0x88, "af42": 0x90,
	"af43": 0x98, "cs0": 0x00, "cs1": 0x20, "cs2": 0x40, "cs3": 0x60, "cs4": 0x80, "cs5": 0xa0,
	"cs6": 0xc0, "cs7": 0xe0, "ef": 0xb8, "le": 0x04, "lowdelay": 0x10, "throughput": 0x08,
	"reliability": 0x04,
}

// parseIPQoS is misc.c's parse_ipqos: a name, or an integer 0-255 in C
// notation (0x10, 020, 16); -1 when neither.
func parseIPQoS(s string) int {
	if v, ok := ipqosNames[strings.ToLower(s)]; ok {
		return v
	}
	if s == "" {
		return -1
	}
	v, ok := strtolPrefix(s, 0)
	if !ok || v < 0 || v > 255 {
		return -1
	}
	return int(v)
}

// strtolPrefix is strtol(3) over the whole string (leading blanks and a
// sign allowed, base 0 meaning C notation); ok is false when not all of s
// is the number.
func strtolPrefix(s string, base int) (int64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if base == 0 {
		switch {
		case len(t) > 1 && (t[:2] == "0x" || t[:2] == "0X"):
			base, t = 16, t[2:]
		case len(t) > 1 && t[0] == '0':
			base, t = 8, t[1:]
		default:
			base = 10
		}
	}
	if t == "" {
		return 0, false
	}
	v, err := strconv.ParseInt(t, base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func syslogFacility(s string) bool {
	switch strings.ToUpper(s) {
	case "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3",
		"LOCAL4", "LOCAL5", "LOCAL6", "LOCAL7":
		return true
	}
	return false
}

// tunID is a2tun for one side: "any" or 0 to SSH_TUNID_MAX.
func tunID(s string) bool {
	if strings.EqualFold(s, "any") {
		return true
	}
	_, e := strtonum(s, 0, 1<<31-1-2)
	return e == ""
}

// scanScaled is OpenBSD's scan_scaled(3): a number with an optional
// fraction and one of the scale letters BKMGTPE (powers of 1024). The error
// is strerror's text.
func scanScaled(s string) (int64, string) {
	const maxDigits = 21 // MAX_DIGITS: SCALE_LENGTH * 3
	const einval, erange = "Invalid argument", "Numerical result out of range"
	p := strings.TrimLeft(s, " \t\n\v\f\r")
	sign := int64(0)
	for p != "" && (p[0] == '-' || p[0] == '+') {
		if sign != 0 {
			return 0, einval
		}
		sign = 1
		if p[0] == '-' {
			sign = -1
		}
		p = p[1:]
	}
	var whole, fpart int64
	ndigits, fract := 0, 0
	for p != "" && (p[0] >= '0' && p[0] <= '9' || p[0] == '.') {
		c := p[0]
		p = p[1:]
		if c == '.' {
			if fract > 0 {
				return 0, einval
			}
			fract = 1
			continue
		}
		d := int64(c - '0')
		if fract > 0 {
			if fract >= maxDigits-1 {
				continue
			}
			fract++
			if fpart > (1<<63-1)/10 {
				return 0, erange
			}
			fpart = fpart*10 + d
			continue
		}
		ndigits++
		if ndigits >= maxDigits || whole > (1<<63-1)/10 || d > (1<<63-1)-whole*10 {
			return 0, erange
		}
		whole = whole*10 + d
	}
	if sign != 0 {
		whole *= sign
	}
	if p == "" {
		return whole, ""
	}
	const scale = "BKMGTPE"
	i := strings.IndexByte(scale, byte(strings.ToUpper(p[:1])[0]))
	if i < 0 {
		return 0, einval
	}
	if len(p) > 1 && isAlnum(p[1]) {
		return 0, einval
	}
	fact := int64(1) << (10 * i)
	if whole > (1<<63-1)/fact || whole < -(1<<63)/fact {
		return 0, erange
	}
	whole *= fact
	for fpart >= (1<<63-1)/fact {
		fpart /= 10
		fract--
	}
	fpart *= fact
	for j := 0; j < fract-1; j++ {
		fpart /= 10
	}
	if sign == -1 {
		whole -= fpart
	} else {
		whole += fpart
	}
	return whole, ""
}
