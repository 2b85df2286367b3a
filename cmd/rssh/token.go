package main

import "errors"

// runToken is `rssh --token list|clear|refresh`: the token cache (issue 4).
func runToken(args []string, std stdio, getenv func(string) string) int {
	fail(std.err, errors.New("--token is not implemented yet"))
	return 255
}
