package envmap

import "errors"

// Kinds of failure, for errors.Is. Every error this package returns for one
// of these also carries a hint (see [Error.HintText]).
var (
	ErrInvalidName = errors.New("invalid environment name")
	ErrNoVault     = errors.New("no admin vault")
	ErrOpMissing   = errors.New("1Password CLI not found")
	ErrNotSignedIn = errors.New("1Password CLI not signed in")
	ErrNotFound    = errors.New("token item not found")
	ErrRateLimited = errors.New("1Password rate limit")
	ErrTransient   = errors.New("transient 1Password failure")
	ErrOpFailed    = errors.New("1Password CLI failed")
)

// Error is a failure that knows its fix. The CLI prints Error() as
// "rssh: …" and HintText() as "rssh: hint: …".
type Error struct {
	kind error  // one of the Err* kinds above
	msg  string // one line: what failed and why
	hint string
	err  error // the cause, if any (its text is already in msg)

	// RetryIn is what a rate-limited op said about when to try again
	// ("58 minutes"), or "".
	RetryIn string
}

func (e *Error) Error() string { return e.msg }

// HintText is the fix, printed by the CLI as "rssh: hint: …".
func (e *Error) HintText() string { return e.hint }

func (e *Error) Unwrap() []error {
	if e.err != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.kind}
}

const hintNoToken = "or connect without a token with --env none"
