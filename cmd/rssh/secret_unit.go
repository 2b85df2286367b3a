package main

func runSecretUnit(args []string, std stdio, getenv func(string) string) int {
	return notYet(std, "rssh secret unit")
}
