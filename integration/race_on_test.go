//go:build race

package integration

// raceEnabled: the tests run under -race, and the load tests build an rssh
// with -race too.
const raceEnabled = true
