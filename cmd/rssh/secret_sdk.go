//go:build sdk

package main

// The 1Password SDK is linked only with `go build -tags sdk`: linking it
// costs every rssh start, the client path included (its packages' init
// and their memory), though it is used only by `rssh secret`. The README
// ("Measured") has the figures.

import (
	"github.com/rssh/rssh/envmap"
	"github.com/rssh/rssh/secret"
	"github.com/rssh/rssh/secret/sdk"
)

func init() {
	newSDKBackend = func(tok envmap.Token) (secret.Backend, error) { return sdk.New(tok, version), nil }
}
