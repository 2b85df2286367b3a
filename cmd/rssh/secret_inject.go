package main

func runSecretInject(args []string, std stdio, getenv func(string) string) int {
	return notYet(std, "rssh secret inject")
}
