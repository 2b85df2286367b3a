package agentbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// upstreamDialTimeout bounds connecting to the upstream agent's socket;
	// a local socket answers at once or not at all.
	upstreamDialTimeout = 5 * time.Second
	// upstreamTimeout bounds one request to the upstream agent. It is long
	// because 1Password may ask the user to approve a signature.
	upstreamTimeout = 2 * time.Minute
	// maxAcceptBackoff caps the pause after a temporary accept error (out of
	// file descriptors, say) so the loop neither spins nor stalls for long.
	maxAcceptBackoff = time.Second
)

// Bridge serves an upstream agent to allowed local peers. Make one with New.
type Bridge struct {
	cfg Config
	log *slog.Logger

	// owner is the uid the bridge runs as; the owner is never restricted by
	// AllowKeys or AllowHostKeys. Tests set it to make the test process a
	// non-owner peer.
	owner         uint32
	allowUIDs     map[uint32]bool
	allowKeys     map[string]bool
	allowHostKeys map[string]bool

	mu     sync.Mutex
	conns  map[*conn]struct{}
	active atomic.Int64
	seq    atomic.Uint64
}

// New checks cfg, fills its defaults, and returns a Bridge ready to Serve.
func New(cfg Config) (*Bridge, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	b := &Bridge{
		cfg:           cfg,
		log:           cfg.Log,
		owner:         uint32(os.Getuid()),
		allowUIDs:     map[uint32]bool{},
		allowKeys:     set(cfg.AllowKeys),
		allowHostKeys: set(cfg.AllowHostKeys),
		conns:         map[*conn]struct{}{},
	}
	for _, u := range cfg.AllowUIDs {
		b.allowUIDs[u] = true
	}
	return b, nil
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// ListenPath is the socket path the bridge serves on, defaults applied:
// what the CLI prints and the Nix daemon's SSH_AUTH_SOCK names.
func (b *Bridge) ListenPath() string { return b.cfg.Listen }

// UpstreamPath is the agent socket the bridge forwards to, defaults applied.
func (b *Bridge) UpstreamPath() string { return b.cfg.Upstream }

// Serve listens on the socket and serves until ctx is cancelled (the CLI
// cancels it on SIGTERM and SIGINT), then closes every connection, removes
// the socket and returns nil. It returns an error at once if it cannot
// listen (ErrAlreadyRunning if another bridge answers there), and if
// accepting fails for a reason other than a passing shortage.
func (b *Bridge) Serve(ctx context.Context) error {
	l, err := listen(b.cfg.Listen)
	if err != nil {
		return err
	}
	b.log.Info("agent bridge listening", "listen", b.cfg.Listen, "upstream", b.cfg.Upstream,
		"owner_uid", b.owner, "allow_uids", b.cfg.AllowUIDs,
		"allow_keys", b.cfg.AllowKeys, "allow_host_keys", b.cfg.AllowHostKeys)
	return b.serve(ctx, l)
}

func (b *Bridge) serve(ctx context.Context, l *net.UnixListener) error {
	// The listener removes its socket file on Close (net.ListenUnix sets
	// unlink-on-close), so every way out of here removes it.
	defer l.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		l.Close()
	}()

	var wg sync.WaitGroup
	defer func() {
		b.closeAll()
		wg.Wait()
	}()

	// A shortage (out of file descriptors: EMFILE, ENFILE) pauses accepting
	// with a doubling, bounded backoff: accept(2) fails at once while the
	// backlog holds a peer, so retrying at once would spin. Peers that
	// arrive meanwhile wait in the listen backlog and are served after.
	short := &shortage{log: b.log, listen: b.cfg.Listen}
	defer short.stop()
	var backoff time.Duration
	for {
		nc, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("accept on %s: %w", b.cfg.Listen, err)
			}
			short.failed(err)
			backoff = min(max(2*backoff, 5*time.Millisecond), maxAcceptBackoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		if backoff > 0 && short.accepted() {
			backoff = 0
		}
		c := &conn{b: b, id: b.seq.Add(1), nc: nc}
		if b.active.Add(1) > int64(b.cfg.MaxConns) {
			b.active.Add(-1)
			c.identify()
			c.audit(slog.LevelInfo, "connect", "refused",
				fmt.Sprintf("too many connections (max %d)", b.cfg.MaxConns))
			nc.Close()
			continue
		}
		b.track(c, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.active.Add(-1)
			defer b.track(c, false)
			c.serve()
		}()
	}
}

// shortageQuiet is how long accepting must go without a failure for a
// shortage to be over. Near the limit, accepts fail and succeed in turn as
// descriptors are freed and taken; that is one shortage, logged once.
const shortageQuiet = 5 * time.Second

// shortage logs a run of failed accepts twice: a warning when it starts,
// and a line with its count and length once it is over.
type shortage struct {
	log    *slog.Logger
	listen string

	mu        sync.Mutex
	failures  int
	since     time.Time   // the first failure
	recovered time.Time   // the first accept after the last failure
	end       *time.Timer // pending "over" line; nil while failing
	gen       uint64      // which end is pending
}

func (s *shortage) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end != nil {
		s.end.Stop()
		s.end = nil
	}
	if s.failures == 0 {
		s.since = time.Now()
		s.log.Warn("accept failed; pausing new connections until it passes", "listen", s.listen,
			"err", err, "max_backoff", maxAcceptBackoff)
	}
	s.failures++
}

// accepted notes an accept that worked and reports whether the shortage
// is over: until then the backoff keeps growing with each failure, however
// many accepts work in between.
func (s *shortage) accepted() (over bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures == 0 {
		return true
	}
	if s.end != nil {
		return false
	}
	s.recovered = time.Now()
	s.gen++
	gen := s.gen
	s.end = time.AfterFunc(shortageQuiet, func() { s.over(gen) })
	return false
}

func (s *shortage) over(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end == nil || s.gen != gen { // a failure came first: the shortage goes on
		return
	}
	s.log.Info("accepting new connections again", "listen", s.listen,
		"failed_accepts", s.failures, "paused", s.recovered.Sub(s.since).Round(time.Millisecond))
	s.failures, s.end = 0, nil
}

func (s *shortage) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end != nil {
		s.end.Stop()
		s.end = nil
	}
}

// temporary is an accept error worth retrying: a shortage that passes, or a
// peer that left before it was accepted.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (b *Bridge) track(c *conn, add bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if add {
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
}

// closeAll ends every connection, which unblocks their goroutines.
func (b *Bridge) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.close()
	}
}

// numConns is the number of connections being served.
func (b *Bridge) numConns() int { return int(b.active.Load()) }
