//go:build race

package agentbridge

// raceEnabled: the race detector's shadow memory makes RSS figures meaningless.
const raceEnabled = true
