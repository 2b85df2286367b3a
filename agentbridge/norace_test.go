//go:build !race

package agentbridge

const raceEnabled = false
