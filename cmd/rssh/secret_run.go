package main

func runSecretRun(args []string, std stdio, getenv func(string) string) int {
	return notYet(std, "rssh secret run")
}
