package resolverd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
)

// DefaultStartTimeout bounds starting a daemon until it listens (it does
// not wait for the SDK's core: that loads in the background).
const DefaultStartTimeout = 10 * time.Second

// Client reaches the session's resolver for Token, starting it with
// Command when none answers. It is a secret.Backend.
type Client struct {
	Token envmap.Token
	// Backend is the daemon's backend ("sdk"): Name() and part of the
	// socket's name.
	Backend string
	// Command starts a daemon, e.g. {rssh, "secret", "resolverd",
	// "--backend", "sdk"}; it gets the token on fd 3 and reports on fd 4.
	Command []string
	// Env is the daemon's environment; nil is this process's, without
	// the token variables.
	Env []string
	// Getenv finds XDG_RUNTIME_DIR; nil is os.Getenv.
	Getenv       func(string) string
	StartTimeout time.Duration
}

var _ secret.Backend = (*Client)(nil)

func (c *Client) Name() string { return c.Backend }

// Path is the socket this client uses.
func (c *Client) Path() (string, error) {
	getenv := c.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	dir, err := Dir(getenv)
	if err != nil {
		return "", &secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: " + err.Error()}
	}
	sid, err := unix.Getsid(0)
	if err != nil {
		return "", &secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: session id: " + err.Error()}
	}
	return filepath.Join(dir, socketName(c.Token, c.Backend, sid)), nil
}

// ResolveAll asks the daemon, starting it if needed.
func (c *Client) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	if len(refs) == 0 {
		return [][]byte{}, nil
	}
	if err := secret.ValidateRefs(refs); err != nil {
		return nil, err
	}
	if len(refs) > maxRefs {
		return nil, &secret.Error{Kind: secret.ErrBackend, Msg: fmt.Sprintf("resolver: %d references in one batch: at most %d", len(refs), maxRefs)}
	}
	resp, err := c.roundTrip(ctx, &request{op: opResolve, auth: authFor(c.Token), refs: refs})
	if err != nil {
		return nil, err
	}
	switch {
	case resp.status == 1:
		return nil, resp.err
	case resp.status != 0 || len(resp.values) != len(refs):
		return nil, &secret.Error{Kind: secret.ErrBackend, Msg: "resolver: a malformed answer"}
	}
	return resp.values, nil
}

// Ping reaches the daemon (starting it if needed) and returns its pid.
func (c *Client) Ping(ctx context.Context) (int, error) {
	resp, err := c.roundTrip(ctx, &request{op: opPing, auth: authFor(c.Token)})
	if err != nil {
		return 0, err
	}
	if resp.status != 2 {
		return 0, &secret.Error{Kind: secret.ErrBackend, Msg: "resolver: a malformed answer"}
	}
	return int(resp.pid), nil
}

func (c *Client) roundTrip(ctx context.Context, req *request) (*response, error) {
	if c.Token.IsZero() {
		return nil, &secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: " + secret.ErrNoToken.Error()}
	}
	path, err := c.Path()
	if err != nil {
		return nil, err
	}
	p, err := encodeRequest(req)
	if err != nil {
		return nil, &secret.Error{Kind: secret.ErrBackend, Msg: "resolver: " + err.Error()}
	}
	conn, err := dial(path)
	if err != nil {
		if conn, err = c.start(ctx, path); err != nil {
			return nil, err
		}
	}
	defer conn.Close()
	if uid, _, err := peerUID(conn); err != nil || uid != os.Geteuid() {
		return nil, &secret.Error{Kind: secret.ErrNoBackend, Msg: fmt.Sprintf("resolver: %s is served by uid %d, not this user", path, uid)}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(resolveTimeout + ioTimeout)
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if err := writeFrame(conn, p); err != nil {
		return nil, c.wireError(ctx, "sending the request", err)
	}
	b, err := readFrame(conn, maxResponse)
	if err != nil {
		if errors.Is(err, errFrame) {
			return nil, c.wireError(ctx, "reading the answer", err)
		}
		if len(b) == 0 && isEOF(err) {
			return nil, &secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: the daemon closed the connection without an answer (another token or user?)"}
		}
		return nil, c.wireError(ctx, "reading the answer", err)
	}
	resp, err := decodeResponse(b)
	clear(b)
	if err != nil {
		return nil, c.wireError(ctx, "reading the answer", err)
	}
	return resp, nil
}

func (c *Client) wireError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return &secret.Error{Kind: secret.ErrTransient, Msg: fmt.Sprintf("resolver: %s: %v", what, ctx.Err())}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &secret.Error{Kind: secret.ErrTransient, Msg: fmt.Sprintf("resolver: %s: no answer in time", what)}
	}
	return &secret.Error{Kind: secret.ErrBackend, Msg: fmt.Sprintf("resolver: %s: %v", what, err)}
}

func isEOF(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF"))
}

func dial(path string) (*net.UnixConn, error) {
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
}

// start runs Command in the background, hands it the token on a pipe,
// waits for its "ok", and dials it.
func (c *Client) start(ctx context.Context, path string) (*net.UnixConn, error) {
	if len(c.Command) == 0 {
		return nil, &secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: no daemon at " + path + " and no command to start one"}
	}
	timeout := c.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fail := func(format string, args ...any) error {
		return &secret.Error{Kind: secret.ErrNoBackend, Msg: "resolver: starting the daemon: " + fmt.Sprintf(format, args...)}
	}
	tokR, tokW, err := os.Pipe()
	if err != nil {
		return nil, fail("%v", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		tokR.Close()
		tokW.Close()
		return nil, fail("%v", err)
	}
	defer readyR.Close()
	cmd := exec.Command(c.Command[0], c.Command[1:]...)
	cmd.ExtraFiles = []*os.File{tokR, readyW} // fds 3 and 4
	// It outlives the caller: it keeps no directory of the caller's busy.
	cmd.Dir = "/"
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = scrubEnv(os.Environ())
	}
	// Its own process group: a ^C at the shell does not reach it. Same
	// session: it watches the session's leader.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	tokR.Close()
	readyW.Close()
	if err != nil {
		tokW.Close()
		return nil, fail("%v", err)
	}
	go cmd.Wait() // reap it if it exits while this process lives
	_, err = tokW.Write(c.Token.Reveal())
	tokW.Close()
	if err != nil {
		return nil, fail("handing over the token: %v", err)
	}
	readyR.SetReadDeadline(deadline)
	line, err := bufio.NewReader(readyR).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case err != nil && line == "":
		return nil, fail("no answer from %s within %v: %v", c.Command[0], timeout, err)
	case line != "ok":
		return nil, fail("%s", strings.TrimPrefix(line, "error: "))
	}
	// Listening (or another daemon holds the lock and is about to).
	for {
		conn, err := dial(path)
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) {
			return nil, fail("%v", err)
		}
		select {
		case <-ctx.Done():
			return nil, fail("%v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// scrubEnv drops the token variables: the daemon gets the token on its
// pipe and outlives the caller.
func scrubEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, secret.TokenEnv+"=") || strings.HasPrefix(kv, "OP_CONNECT_TOKEN=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
