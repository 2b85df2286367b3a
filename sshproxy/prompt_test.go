package sshproxy

// answerPrompt answers every prompt; used by tests on every OS, so it is
// not in the linux-only crash tests.
type answerPrompt struct{}

func (answerPrompt) Secret(string) (string, error)  { return "secret", nil }
func (answerPrompt) Confirm(string) (string, error) { return "yes", nil }
