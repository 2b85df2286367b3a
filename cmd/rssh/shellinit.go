package main

// runShellInit is `rssh shell-init bash|zsh|fish`.
func runShellInit(args []string, std stdio, getenv func(string) string) int {
	return notYet(std, "rssh shell-init")
}
