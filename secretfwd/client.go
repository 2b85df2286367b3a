package secretfwd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh/agent"
)

// Client resolves references through the laptop, over the forwarded agent
// socket: the remote side's "forward" backend.
type Client struct {
	// Socket is the forwarded agent's socket (SSH_AUTH_SOCK).
	Socket string
}

// Name is the backend's name for RSSH_SECRET_BACKEND.
func (*Client) Name() string { return "forward" }

// dialTimeout bounds connecting to the socket: a socket whose session has
// ended fails at once (sshd removed it), a stuck one within this.
const dialTimeout = 5 * time.Second

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	if c.Socket == "" {
		return nil, errors.New("secret forwarding: SSH_AUTH_SOCK is not set (was the session started with rssh --forward-secrets?)")
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return nil, fmt.Errorf("secret forwarding: cannot reach the laptop through %s (the session may have ended): %w", c.Socket, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn, nil
}

// Available reports whether the agent at the socket answers secret
// forwarding, by the agent protocol's "query" extension.
func (c *Client) Available(ctx context.Context) bool { return c.Check(ctx) == nil }

// ErrNotForwarding is an agent that does not answer secret forwarding.
var ErrNotForwarding = errors.New("the agent does not forward secrets")

// Check is Available with the reason: the socket cannot be reached (the
// session has ended), or its agent is not one that forwards secrets.
func (c *Client) Check(ctx context.Context) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, ok := ctx.Deadline(); !ok {
		conn.SetDeadline(time.Now().Add(dialTimeout))
	}
	res, err := agent.NewClient(conn).Extension("query", nil)
	if err != nil {
		return fmt.Errorf("secret forwarding: %s: %w", c.Socket, ErrNotForwarding)
	}
	if names, err := decodeQuery(res); err != nil || !slices.Contains(names, Extension) {
		return fmt.Errorf("secret forwarding: %s: %w", c.Socket, ErrNotForwarding)
	}
	return nil
}

// RefusedError is a reference the laptop would not answer, or could not.
type RefusedError struct {
	Ref    string
	Reason string
	Failed bool // resolving failed, rather than policy refusing
}

func (e *RefusedError) Error() string {
	if e.Failed {
		return fmt.Sprintf("%s: the laptop could not resolve it: %s", e.Ref, e.Reason)
	}
	return fmt.Sprintf("%s: refused by the laptop: %s", e.Ref, e.Reason)
}

// ResolveAll asks the laptop for refs, MaxRefs at a time; out[i] is the
// value of refs[i]. Every refused or failed reference is in the error.
func (c *Client) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	out := make([][]byte, 0, len(refs))
	var errs []error
	for chunk := range slices.Chunk(refs, MaxRefs) {
		answers, err := c.ask(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for i, a := range answers {
			switch a.Status {
			case StatusValue:
				out = append(out, a.Data)
			default:
				out = append(out, nil)
				errs = append(errs, &RefusedError{Ref: chunk[i], Reason: string(a.Data), Failed: a.Status == StatusFailed})
			}
		}
	}
	if len(errs) > 0 {
		for _, v := range out {
			clear(v)
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (c *Client) ask(ctx context.Context, refs []string) ([]Answer, error) {
	req, err := EncodeRequest(refs)
	if err != nil {
		return nil, fmt.Errorf("secret forwarding: %w", err)
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	res, err := agent.NewClient(conn).Extension(Extension, req)
	switch {
	case errors.Is(err, agent.ErrExtensionUnsupported):
		return nil, fmt.Errorf("secret forwarding: the agent at %s does not forward secrets (connect with rssh --forward-secrets or RsshForwardSecrets yes)", c.Socket)
	case err != nil:
		return nil, fmt.Errorf("secret forwarding: %s", strings.TrimPrefix(err.Error(), "agent: "))
	}
	answers, err := DecodeReply(res, len(refs))
	if err != nil {
		return nil, fmt.Errorf("secret forwarding: bad reply from the laptop: %w", err)
	}
	return answers, nil
}
