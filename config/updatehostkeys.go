package config

// updateHostKeys is UpdateHostKeys once defaults are filled in and ssh.c's
// check has turned "ask" off where it cannot ask: "yes", "no" or "ask".
func (o *options) updateHostKeys() string {
	v, ok := parseMulti(o.keptArg("updatehostkeys"), multiYesNoAsk)
	if !ok {
		return "no"
	}
	return [...]string{"no", "yes", "ask"}[v]
}
