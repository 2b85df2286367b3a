package main

import "errors"

// runBridge is `rssh --bridge …`: with no destination the agent bridge
// daemon, with HOST PORT the ProxyCommand relay (issue 5).
func runBridge(args []string, std stdio, getenv func(string) string) int {
	fail(std.err, errors.New("--bridge is not implemented yet"))
	return 255
}
