package sshproxy

import (
	"strings"

	"github.com/rssh/rssh/config"
)

// command is one ~C command line, parsed.
type command struct {
	none   bool // an empty line: nothing to do
	help   bool
	cancel bool // -K: cancel rather than add
	kind   config.ForwardKind
	spec   string         // the forward to add
	fwd    config.Forward // the forward to cancel
}

// cmdlineSpace is what C's isspace skips.
const cmdlineSpace = " \t\n\v\f\r"

// parseCommand reads a ~C line as OpenSSH's process_cmdline does; bad is
// the line OpenSSH logs for input it refuses. There is no "!command":
// rssh has no PermitLocalCommand, and OpenSSH without it answers "!" as
// any other unknown command.
func parseCommand(line string) (cmd command, bad string) {
	s := strings.TrimLeft(line, cmdlineSpace)
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return command{none: true}, ""
	}
	switch s[0] {
	case 'h', 'H', '?':
		return command{help: true}, ""
	}
	if s[0] == 'K' {
		cmd.cancel = true
		s = s[1:]
	}
	if s == "" {
		return command{}, "Invalid command."
	}
	switch s[0] {
	case 'L':
		cmd.kind = config.LocalForward
	case 'R':
		cmd.kind = config.RemoteForward
	case 'D':
		cmd.kind = config.DynamicForward
	default:
		return command{}, "Invalid command."
	}
	spec := strings.TrimLeft(s[1:], cmdlineSpace)
	// OpenSSH's parse_forward leaves trailing blanks in the last field,
	// where they make it invalid; config.ParseForward would instead read
	// "port host:port" as ssh -G prints a forward.
	valid := !strings.ContainsAny(spec, cmdlineSpace)
	if cmd.cancel {
		// Cancelling takes one or two fields: [bind_address:]port, or a path.
		fwd, err := config.ParseForward(spec, config.DynamicForward)
		if !valid || err != nil {
			return command{}, "Bad forwarding close specification."
		}
		cmd.fwd = fwd
		return cmd, ""
	}
	if _, err := config.ParseForward(spec, cmd.kind); !valid || err != nil {
		if cmd.kind == config.RemoteForward {
			return command{}, "Bad remote forwarding specification."
		}
		return command{}, "Bad local forwarding specification."
	}
	cmd.spec = spec
	return cmd, ""
}

// cmdlineHelp is process_cmdline's answer to -h, without "!args".
var cmdlineHelp = []string{
	"Commands:",
	"      -L[bind_address:]port:host:hostport    Request local forward",
	"      -R[bind_address:]port:host:hostport    Request remote forward",
	"      -D[bind_address:]port                  Request dynamic forward",
	"      -KL[bind_address:]port                 Cancel local forward",
	"      -KR[bind_address:]port                 Cancel remote forward",
	"      -KD[bind_address:]port                 Cancel dynamic forward",
}

// command runs one ~C line against the running forwards, and logs what
// came of it at INFO with OpenSSH's words (why a forward could not be set
// up at ERROR before them), so that LogLevel and -E apply as to ssh's.
func (f *Forwarding) command(line string) {
	log := f.fw.Log
	cmd, bad := parseCommand(line)
	switch {
	case bad != "":
		log.Info(bad)
	case cmd.none:
	case cmd.help:
		for _, l := range cmdlineHelp {
			log.Info(l)
		}
	case cmd.cancel:
		if f.cancel(cmd.kind, cmd.fwd) {
			log.Info("Canceled forwarding.")
		} else {
			log.Info("Unknown port forwarding.")
		}
	default:
		if err := f.start(cmd.kind, cmd.spec); err != nil {
			log.Error(err.Error())
			log.Info("Port forwarding failed.")
			return
		}
		log.Info("Forwarding port.")
	}
}
