package envmap

import (
	"testing"

	"github.com/rssh/rssh/internal/testenv"
)

// The fake op, the keyring and the disk scan are shared with the
// integration tests through internal/testenv.
func newFakeOp(t testing.TB, vault string) *testenv.FakeOp { return testenv.NewFakeOp(t, vault) }
