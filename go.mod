module github.com/rssh/rssh

go 1.26.0

require (
	github.com/skeema/knownhosts v1.3.3 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/term v0.47.0 // indirect
)
