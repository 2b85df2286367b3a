module github.com/rssh/rssh

go 1.26.0

require (
	github.com/creack/pty v1.1.24
	github.com/ebitengine/purego v0.11.3
	github.com/keybase/go-keychain v0.0.1
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require github.com/keybase/dbus v0.0.0-20220506165403-5aa21ea2c23a
