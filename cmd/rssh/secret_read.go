package main

func runSecretRead(args []string, std stdio, getenv func(string) string) int {
	return notYet(std, "rssh secret read")
}
