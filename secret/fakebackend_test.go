package secret

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// fakeBackend answers ResolveAll from a table and records every call.
// fail makes the next calls fail with err; enter, when set, is told of
// each call and the call waits for gate (if set) before it answers.
type fakeBackend struct {
	mu     sync.Mutex
	values map[string][]byte
	calls  [][]string
	fail   int
	err    error
	enter  chan<- string
	gate   <-chan struct{}
	name   string
}

var _ Backend = (*fakeBackend)(nil)

func newFake(values map[string][]byte) *fakeBackend {
	return &fakeBackend{values: values, name: "fake"}
}

func (f *fakeBackend) Name() string { return f.name }

func (f *fakeBackend) ResolveAll(ctx context.Context, refs []string) ([][]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, slices.Clone(refs))
	enter, gate := f.enter, f.gate
	f.mu.Unlock()
	if enter != nil {
		enter <- f.name
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return nil, f.err
	}
	out := make([][]byte, len(refs))
	for i, r := range refs {
		v, ok := f.values[r]
		if !ok {
			return nil, &Error{Kind: ErrNotFound, Refs: []string{r}, Msg: fmt.Sprintf("%s: not found", r)}
		}
		out[i] = slices.Clone(v)
	}
	return out, nil
}

func (f *fakeBackend) Calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
