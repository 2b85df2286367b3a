// Package secretfwd forwards secrets the way agent forwarding forwards
// keys: the Service Account token stays on the laptop, and the remote host
// asks, per reference, over the forwarded agent channel.
//
// The laptop's rssh answers an agent-protocol extension (SSH_AGENTC_EXTENSION,
// announced by the "query" extension) on the auth-agent@openssh.com channels
// of a session started with secret forwarding: [Server]. On the remote side,
// `rssh secret …` finds the extension behind SSH_AUTH_SOCK and resolves
// through it: [Client].
//
// The request, inside SSH_AGENTC_EXTENSION's contents:
//
//	uint32   n (1 ≤ n ≤ MaxRefs)
//	string   reference (op://…), n times
//
// The reply to a request the laptop handled, refusals included, is
// SSH_AGENT_SUCCESS followed by
//
//	uint32   n, as asked
//	byte     status (0 value, 1 refused, 2 failed), n times, each followed by
//	string   the value, or the reason in one line
//
// Every reference gets its own answer so that one refused reference does not
// hide which others were fine; the client turns any non-zero status into an
// error that names the reference.
package secretfwd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Extension is the extension name the laptop answers. Names without an
// "@domain" are reserved for the agent protocol's own extensions.
const Extension = "op-resolve@rssh"

// Limits: a request or a reply larger than this is refused before it is
// parsed. OpenSSH's agent takes messages up to 256 KiB; a reply stays under.
const (
	MaxRefs     = 64
	MaxRefLen   = 1024
	MaxReplyLen = 200 << 10
)

// Status of one reference in a reply.
const (
	StatusValue   byte = 0
	StatusRefused byte = 1
	StatusFailed  byte = 2
)

// Agent protocol message numbers used here (draft-ietf-sshm-ssh-agent).
const (
	agentSuccess           = 6
	agentExtensionResponse = 29
)

// Answer is the reply for one reference.
type Answer struct {
	Status byte
	// Data is the value for StatusValue, otherwise the reason.
	Data []byte
}

var errShort = errors.New("truncated message")

func putString(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func getString(b []byte, max int) ([]byte, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errShort
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, errShort
	}
	if int(n) > max {
		return nil, nil, fmt.Errorf("field of %d bytes exceeds the limit of %d", n, max)
	}
	return b[:n], b[n:], nil
}

// EncodeRequest is the extension contents asking for refs.
func EncodeRequest(refs []string) ([]byte, error) {
	if len(refs) == 0 || len(refs) > MaxRefs {
		return nil, fmt.Errorf("%d references in one request: between 1 and %d are allowed", len(refs), MaxRefs)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(refs)))
	for _, r := range refs {
		if len(r) > MaxRefLen {
			return nil, fmt.Errorf("reference of %d bytes exceeds the limit of %d", len(r), MaxRefLen)
		}
		b = putString(b, []byte(r))
	}
	return b, nil
}

// DecodeRequest parses the extension contents.
func DecodeRequest(b []byte) ([]string, error) {
	if len(b) < 4 {
		return nil, errShort
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if n == 0 || n > MaxRefs {
		return nil, fmt.Errorf("%d references in one request: between 1 and %d are allowed", n, MaxRefs)
	}
	refs := make([]string, 0, n)
	for range n {
		var r []byte
		var err error
		if r, b, err = getString(b, MaxRefLen); err != nil {
			return nil, err
		}
		refs = append(refs, string(r))
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes after the references")
	}
	return refs, nil
}

// EncodeReply is the whole agent reply, SSH_AGENT_SUCCESS first.
func EncodeReply(answers []Answer) ([]byte, error) {
	b := []byte{agentSuccess}
	b = binary.BigEndian.AppendUint32(b, uint32(len(answers)))
	for _, a := range answers {
		b = append(b, a.Status)
		b = putString(b, a.Data)
	}
	if len(b) > MaxReplyLen {
		return nil, fmt.Errorf("reply of %d bytes exceeds the limit of %d", len(b), MaxReplyLen)
	}
	return b, nil
}

// DecodeReply parses a reply to a request for want references.
func DecodeReply(b []byte, want int) ([]Answer, error) {
	if len(b) > MaxReplyLen {
		return nil, fmt.Errorf("reply of %d bytes exceeds the limit of %d", len(b), MaxReplyLen)
	}
	if len(b) < 5 || b[0] != agentSuccess {
		return nil, errors.New("not a secret-forwarding reply")
	}
	n := binary.BigEndian.Uint32(b[1:])
	b = b[5:]
	if int64(n) != int64(want) {
		return nil, fmt.Errorf("reply has %d answers for %d references", n, want)
	}
	out := make([]Answer, 0, n)
	for range n {
		if len(b) < 1 {
			return nil, errShort
		}
		st := b[0]
		if st > StatusFailed {
			return nil, fmt.Errorf("unknown status %d", st)
		}
		var d []byte
		var err error
		if d, b, err = getString(b[1:], MaxReplyLen); err != nil {
			return nil, err
		}
		out = append(out, Answer{Status: st, Data: d})
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes after the answers")
	}
	return out, nil
}

// encodeQuery is the reply to the "query" extension: SSH_AGENT_SUCCESS, a
// count, and the extension names this agent answers, as strings (the shape
// OpenSSH-derived agents send).
func encodeQuery(names []string) []byte {
	b := []byte{agentSuccess}
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, n := range names {
		b = putString(b, []byte(n))
	}
	return b
}

// decodeQuery reads a "query" reply in any of the shapes agents send: a
// count then strings, strings alone, or strings wrapped in one string; the
// reply code may be SSH_AGENT_SUCCESS or RFC 9987's
// SSH_AGENT_EXTENSION_RESPONSE.
func decodeQuery(b []byte) ([]string, error) {
	if len(b) < 1 || (b[0] != agentSuccess && b[0] != agentExtensionResponse) {
		return nil, errors.New("not a query reply")
	}
	b = b[1:]
	if len(b) >= 4 {
		n := binary.BigEndian.Uint32(b)
		if names, ok := stringsUntilEnd(b[4:]); ok && uint32(len(names)) == n {
			return names, nil
		}
		if int(n) == len(b)-4 {
			// One wrapping string: its contents are the list.
			if names, ok := stringsUntilEnd(b[4:]); ok {
				return names, nil
			}
		}
	}
	if names, ok := stringsUntilEnd(b); ok {
		return names, nil
	}
	return nil, errors.New("malformed query reply")
}

// stringsUntilEnd splits b into strings that end exactly at its end.
func stringsUntilEnd(b []byte) ([]string, bool) {
	var out []string
	for len(b) > 0 {
		s, rest, err := getString(b, 256)
		if err != nil {
			return nil, false
		}
		out = append(out, string(s))
		b = rest
	}
	return out, true
}
