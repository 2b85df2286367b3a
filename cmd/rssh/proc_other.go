//go:build !linux

package main

import "errors"

// Other systems have no /proc: the doctor's checks that read another
// process say so and skip.
var errNoProc = errors.New("reading another process's arguments and environment is implemented on Linux only")

func processArgs(int) ([]string, error) { return nil, errNoProc }
func processEnv(int) ([]string, error)  { return nil, errNoProc }
