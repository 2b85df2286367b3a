// Package resolverd is the per-session resolver: a small daemon that holds
// one secret.Backend (the 1Password SDK's, whose core costs seconds and
// ~160 MB to load) for a login session, so that `rssh secret` and the
// shell wrappers, called on every `gh`, pay for it once.
//
// The daemon listens on a unix socket in a private directory (0700, see
// Dir) named after a hash of the token, the backend and the session ID;
// it answers only peers of its own uid (SO_PEERCRED) that prove they hold
// the same token, keeps values in memory only and for a TTL, and exits
// when its session's leader exits (the login shell or command sshd
// started), after an idle timeout, or on SIGTERM/SIGINT/SIGHUP. Client,
// itself a secret.Backend, reaches it and starts it on demand, handing it
// the token through a pipe, never argv, the environment or a file.
//
// It does not import the SDK: the backend is whatever the daemon's caller
// builds.
package resolverd

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/rssh/rssh/secret"
)

const (
	// DefaultTTL is how long a resolved value is kept.
	DefaultTTL = 5 * time.Minute
	// DefaultIdle ends a daemon that has answered nothing for this long.
	DefaultIdle = 15 * time.Minute
	// ioTimeout bounds reading a request and writing a response.
	ioTimeout = 10 * time.Second
	// resolveTimeout bounds one backend call (a first SDK call compiles
	// its core and signs in).
	resolveTimeout = 2 * time.Minute
)

// Server answers resolver requests on a listener.
type Server struct {
	Backend secret.Backend
	Auth    [authLen]byte // authFor(token): what clients must send
	UID     int           // the only peer uid answered
	TTL     time.Duration
	Idle    time.Duration
	Log     *slog.Logger

	now func() time.Time // test seam

	mu       sync.Mutex // cache and lastUsed
	cache    map[string]entry
	lastUsed time.Time

	resolveMu sync.Mutex // one backend call at a time; the SDK serialises anyway
}

type entry struct {
	v   []byte
	exp time.Time
}

func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Serve answers connections on ln until ctx is done, the session ends
// (sessionGone closes; nil means never) or nothing was asked for s.Idle.
// It closes ln and wipes every cached value before it returns.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener, sessionGone <-chan struct{}) error {
	if s.TTL <= 0 {
		s.TTL = DefaultTTL
	}
	if s.Idle <= 0 {
		s.Idle = DefaultIdle
	}
	s.mu.Lock()
	s.cache = map[string]entry{}
	s.lastUsed = s.clock()
	s.mu.Unlock()
	defer s.wipe()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		// A janitor: drops expired values and ends an idle daemon.
		t := time.NewTicker(min(s.Idle/4, s.TTL/4, time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				ln.Close()
				return
			case <-sessionGone:
				s.logger().Info("session leader exited")
				cancel()
			case <-t.C:
				if s.expire() {
					s.logger().Info("idle timeout")
					cancel()
				}
			}
		}
	}()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and friends: wait a little rather than spin.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, c)
		}()
	}
}

// expire drops values past their TTL and reports whether the daemon has
// been idle for s.Idle.
func (s *Server) expire() bool {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.cache {
		if !now.Before(e.exp) {
			clear(e.v)
			delete(s.cache, k)
		}
	}
	return now.Sub(s.lastUsed) >= s.Idle
}

func (s *Server) wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.cache {
		clear(e.v)
		delete(s.cache, k)
	}
}

func (s *Server) handle(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	uid, pid, err := peerUID(c)
	if err != nil || uid != s.UID {
		s.logger().Warn("peer refused", "uid", uid, "pid", pid, "err", err)
		return
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	p, err := readFrame(c, maxRequest)
	if err != nil {
		s.logger().Warn("bad request", "pid", pid, "err", err)
		return
	}
	req, err := decodeRequest(p)
	if err != nil {
		s.logger().Warn("bad request", "pid", pid, "err", err)
		return
	}
	if subtle.ConstantTimeCompare(req.auth[:], s.Auth[:]) != 1 {
		s.logger().Warn("peer refused: another token", "pid", pid)
		return
	}
	s.mu.Lock()
	s.lastUsed = s.clock()
	s.mu.Unlock()
	var resp *response
	switch req.op {
	case opPing:
		resp = &response{status: 2, pid: uint32(selfPID)}
	case opResolve:
		c.SetDeadline(time.Time{})
		vals, err := s.resolve(ctx, req.refs)
		if err != nil {
			resp = &response{status: 1, err: asError(err)}
		} else {
			resp = &response{status: 0, values: vals}
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
	}
	b, err := encodeResponse(resp)
	if err != nil {
		b, _ = encodeResponse(&response{status: 1, err: &secret.Error{Kind: secret.ErrBackend, Msg: "resolver: " + err.Error()}})
	}
	writeFrame(c, b)
	clear(b)
	for _, v := range resp.values {
		clear(v)
	}
}

// resolve answers refs from the cache and resolves the rest in one
// backend batch. The returned values are copies.
func (s *Server) resolve(ctx context.Context, refs []string) ([][]byte, error) {
	if err := secret.ValidateRefs(refs); err != nil {
		return nil, err
	}
	if out, ok := s.cached(refs); ok {
		return out, nil
	}
	s.resolveMu.Lock()
	defer s.resolveMu.Unlock()
	// Another request may have resolved them while this one waited.
	if out, ok := s.cached(refs); ok {
		return out, nil
	}
	var missing []string
	s.mu.Lock()
	now := s.clock()
	for _, r := range refs {
		if e, ok := s.cache[r]; (!ok || !now.Before(e.exp)) && !contains(missing, r) {
			missing = append(missing, r)
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	vals, err := s.Backend.ResolveAll(ctx, missing)
	if err != nil {
		return nil, err
	}
	if len(vals) != len(missing) {
		return nil, &secret.Error{Kind: secret.ErrBackend, Msg: "resolver: the backend answered the wrong number of values"}
	}
	s.mu.Lock()
	exp := s.clock().Add(s.TTL)
	for i, r := range missing {
		if old, ok := s.cache[r]; ok {
			clear(old.v)
		}
		s.cache[r] = entry{v: vals[i], exp: exp}
	}
	s.mu.Unlock()
	out, ok := s.cached(refs)
	if !ok { // a TTL shorter than the call: answer what was resolved
		out = make([][]byte, len(refs))
		for i, r := range refs {
			out[i] = append([]byte(nil), vals[indexOf(missing, r)]...)
		}
	}
	return out, nil
}

// cached returns copies of every ref's value if all are cached and fresh.
func (s *Server) cached(refs []string) ([][]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	out := make([][]byte, len(refs))
	for i, r := range refs {
		e, ok := s.cache[r]
		if !ok || !now.Before(e.exp) {
			for _, v := range out[:i] {
				clear(v)
			}
			return nil, false
		}
		out[i] = append([]byte(nil), e.v...)
	}
	return out, true
}

func contains(xs []string, x string) bool { return indexOf(xs, x) >= 0 }

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// asError turns any backend error into one that can cross the wire.
func asError(err error) *secret.Error {
	var e *secret.Error
	if errors.As(err, &e) {
		return e
	}
	var re *secret.RefError
	if errors.As(err, &re) {
		return &secret.Error{Kind: secret.ErrBackend, Refs: []string{re.Ref}, Msg: re.Error(), Hint: re.HintText()}
	}
	return &secret.Error{Kind: secret.ErrBackend, Msg: err.Error()}
}
