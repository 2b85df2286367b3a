package main

func runSecretFetch(args []string, std stdio, getenv func(string) string) int {
	return notYet(std, "rssh secret fetch")
}
