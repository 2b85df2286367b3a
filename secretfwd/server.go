package secretfwd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Defaults for a session's policy.
const (
	// DefaultTTL is how long an answered value is kept in memory.
	DefaultTTL = 5 * time.Minute
	// DefaultLimit references resolved with 1Password per DefaultWindow:
	// at most 300 an hour, under a Teams account's hourly read quota, so a
	// runaway remote loop cannot use it up. Cached reads do not count.
	DefaultLimit  = 50
	DefaultWindow = 10 * time.Minute
)

// Policy is what the laptop answers for one session.
type Policy struct {
	// Host and RemoteUser name the session in audit lines.
	Host, RemoteUser string
	// Env is the host's environment: only references into its vault,
	// "SA - <env>", are answered.
	Env string
	// Confirm, when set, is asked before the first read of each reference
	// in the session (RsshSecretConfirm yes); false refuses it.
	Confirm func(ref string) (bool, error)
	TTL     time.Duration
	Limit   int
	Window  time.Duration
}

// Server answers secret requests for one session, and keeps its cache and
// its rate limit; each forwarded agent channel gets an [Server.Agent].
type Server struct {
	Policy
	// Resolve resolves references with the environment's token, on the
	// laptop: in one batch, out[i] for refs[i]. Its errors name
	// references, never values.
	Resolve func(ctx context.Context, refs []string) ([][]byte, error)
	Audit   *Audit
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	cache     map[string]cached
	confirmed map[string]bool
	resolved  []time.Time // when each reference was resolved, within the window
	closed    bool
}

type cached struct {
	value   []byte
	expires time.Time
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultTTL
}

func (s *Server) limit() (int, time.Duration) {
	n, w := s.Limit, s.Window
	if n <= 0 {
		n = DefaultLimit
	}
	if w <= 0 {
		w = DefaultWindow
	}
	return n, w
}

// Vault is the one vault a host of environment env may read from.
func Vault(env string) string { return "SA - " + env }

// vaultOf is the vault part of an op:// reference.
func vaultOf(ref string) (string, bool) {
	rest, ok := strings.CutPrefix(ref, "op://")
	if !ok {
		return "", false
	}
	vault, item, ok := strings.Cut(rest, "/")
	if !ok || vault == "" || item == "" {
		return "", false
	}
	return vault, true
}

// check is the policy for one reference: "" to go on, else the reason it
// is refused.
func (s *Server) check(ref string) string {
	vault, ok := vaultOf(ref)
	if !ok {
		return "not an op://vault/item/field reference"
	}
	if s.Env == "" {
		return "this host has no environment (no RSSH_ENV), so it may read no secret"
	}
	if vault != Vault(s.Env) {
		return fmt.Sprintf("outside this host's environment vault %q", Vault(s.Env))
	}
	return ""
}

// Handle answers one request: every reference gets an answer, refused and
// failed ones a reason. Cached values are answered without resolving; the
// others are resolved in one batch, within the rate limit.
func (s *Server) Handle(ctx context.Context, refs []string) []Answer {
	answers := make([]Answer, len(refs))
	var todo []int
	s.mu.Lock()
	now := s.now()
	for i, ref := range refs {
		if s.closed {
			answers[i] = s.refuse(ref, "the session has ended")
			continue
		}
		if why := s.check(ref); why != "" {
			answers[i] = s.refuse(ref, why)
			continue
		}
		if c, ok := s.cache[ref]; ok && now.Before(c.expires) {
			answers[i] = Answer{Status: StatusValue, Data: append([]byte(nil), c.value...)}
			s.Audit.Record(s.Host, s.RemoteUser, ref, "answered", "cached")
			continue
		}
		todo = append(todo, i)
	}
	s.mu.Unlock()

	// Confirmation asks a person: never with the lock held.
	var ask []int
	for _, i := range todo {
		s.mu.Lock()
		done := s.confirmed[refs[i]]
		s.mu.Unlock()
		if s.Confirm == nil || done {
			ask = append(ask, i)
			continue
		}
		ok, err := s.Confirm(refs[i])
		switch {
		case err != nil:
			answers[i] = s.refuse(refs[i], "could not ask for confirmation on the laptop: "+err.Error())
		case !ok:
			answers[i] = s.refuse(refs[i], "declined on the laptop")
		default:
			s.mu.Lock()
			if s.confirmed == nil {
				s.confirmed = map[string]bool{}
			}
			s.confirmed[refs[i]] = true
			s.mu.Unlock()
			ask = append(ask, i)
		}
	}

	// The rate limit counts references sent to 1Password.
	s.mu.Lock()
	n, window := s.limit()
	cut := 0
	for cut < len(s.resolved) && now.Sub(s.resolved[cut]) >= window {
		cut++
	}
	s.resolved = s.resolved[cut:]
	var batch []int
	for _, i := range ask {
		if len(s.resolved) >= n {
			answers[i] = s.refuse(refs[i], fmt.Sprintf("rate limit reached: at most %d references are resolved per %s in one session", n, window))
			continue
		}
		s.resolved = append(s.resolved, now)
		batch = append(batch, i)
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		return answers
	}

	want := make([]string, len(batch))
	for j, i := range batch {
		want[j] = refs[i]
	}
	values, err := s.resolve(ctx, want)
	s.mu.Lock()
	defer s.mu.Unlock()
	for j, i := range batch {
		if err != nil {
			answers[i] = Answer{Status: StatusFailed, Data: []byte(oneLine(err.Error()))}
			s.Audit.Record(s.Host, s.RemoteUser, refs[i], "failed", oneLine(err.Error()))
			continue
		}
		answers[i] = Answer{Status: StatusValue, Data: values[j]}
		if !s.closed {
			if s.cache == nil {
				s.cache = map[string]cached{}
			}
			if old, ok := s.cache[refs[i]]; ok {
				clear(old.value)
			}
			s.cache[refs[i]] = cached{value: append([]byte(nil), values[j]...), expires: s.now().Add(s.ttl())}
		}
		s.Audit.Record(s.Host, s.RemoteUser, refs[i], "answered", "resolved")
	}
	return answers
}

func (s *Server) resolve(ctx context.Context, refs []string) (out [][]byte, err error) {
	if s.Resolve == nil {
		return nil, errors.New("secret forwarding has no resolver on the laptop")
	}
	defer func() {
		// A resolver that panics must not take the session with it.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("internal error in the laptop's resolver: %v", r)
		}
	}()
	out, err = s.Resolve(ctx, refs)
	if err == nil && len(out) != len(refs) {
		return nil, fmt.Errorf("the laptop's resolver answered %d values for %d references", len(out), len(refs))
	}
	return out, err
}

// refuse records and returns a refusal; call with s.mu held or not, it
// touches no state.
func (s *Server) refuse(ref, why string) Answer {
	s.Audit.Record(s.Host, s.RemoteUser, ref, "refused", why)
	return Answer{Status: StatusRefused, Data: []byte(why)}
}

// Close wipes the cached values; later requests are refused.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for k, c := range s.cache {
		clear(c.value)
		delete(s.cache, k)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// Agent protocol message numbers the channel filter reads or writes.
const (
	agentFailure            = 5
	agentcRequestIdentities = 11
	agentIdentitiesAnswer   = 12
	agentcExtension         = 27
	agentExtensionFailure   = 28
	maxAgentMessage         = 256 << 10 // AGENT_MAX_LEN in OpenSSH's ssh-agent.c
	requestTimeout          = 2 * time.Minute
)

// ServeChannel serves one forwarded agent channel until either side ends
// it: the secret extension and "query" are answered here; every other
// message goes to upstream (the user's agent, when ForwardAgent is on)
// unchanged, its reply back unchanged, so ssh-add -l, signatures and
// OpenSSH's own extensions (session-bind) work as with -A. With upstream
// nil the channel lists no keys and answers everything else with failure.
func (s *Server) ServeChannel(ch io.ReadWriter, upstream io.ReadWriter) error {
	for {
		req, err := readFrame(ch)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		reply, err := s.answer(req, upstream)
		if err != nil {
			return err
		}
		if err := writeFrame(ch, reply); err != nil {
			return err
		}
	}
}

func (s *Server) answer(req []byte, upstream io.ReadWriter) ([]byte, error) {
	if len(req) == 0 {
		return []byte{agentFailure}, nil
	}
	if req[0] == agentcExtension {
		name, contents, err := getString(req[1:], 256)
		if err == nil {
			switch string(name) {
			case "query":
				names := []string{"query", Extension}
				if upstream != nil {
					// The user's agent's extensions are reachable too.
					if r, err := roundTrip(upstream, req); err == nil {
						if more, err := decodeQuery(r); err == nil {
							for _, n := range more {
								if n != "query" && n != Extension {
									names = append(names, n)
								}
							}
						}
					} else {
						return nil, err
					}
				}
				return encodeQuery(names), nil
			case Extension:
				refs, err := DecodeRequest(contents)
				if err != nil {
					return []byte{agentExtensionFailure}, nil
				}
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				defer cancel()
				reply, err := EncodeReply(s.Handle(ctx, refs))
				if err != nil {
					return []byte{agentExtensionFailure}, nil
				}
				return reply, nil
			}
		}
	}
	if upstream != nil {
		return roundTrip(upstream, req)
	}
	if req[0] == agentcRequestIdentities {
		return []byte{agentIdentitiesAnswer, 0, 0, 0, 0}, nil
	}
	return []byte{agentFailure}, nil
}

func roundTrip(upstream io.ReadWriter, req []byte) ([]byte, error) {
	if err := writeFrame(upstream, req); err != nil {
		return nil, fmt.Errorf("the local agent: %w", err)
	}
	r, err := readFrame(upstream)
	if err != nil {
		return nil, fmt.Errorf("the local agent: %w", err)
	}
	return r, nil
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxAgentMessage {
		return nil, fmt.Errorf("agent message of %d bytes exceeds the limit of %d", n, maxAgentMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func writeFrame(w io.Writer, b []byte) error {
	_, err := w.Write(append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b))), b...))
	return err
}
