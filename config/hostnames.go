package config

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// HostNames lists the host names a user's ssh_config names literally: the
// Host patterns with no wildcard or negation, from configFile (or
// ~/.ssh/config when it is "") and every file it Includes, whether or not
// the Include sits in a block that would apply. It is for shell
// completion, so it is best effort: unreadable files are skipped, nothing is
// an error, and it reads at most maxIncludeFiles files.
func HostNames(configFile string) []string {
	home, _ := os.UserHomeDir()
	if configFile == "" {
		configFile = filepath.Join(home, ".ssh", "config")
	}
	seen := map[string]bool{}
	var names []string
	files := 0
	var read func(path string, depth int)
	read = func(path string, depth int) {
		files++
		if depth > maxIncludeDepth || files > maxIncludeFiles {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			return
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 4096), 64*1024)
		for sc.Scan() {
			keyword, rest, blank, _, ok := splitLine(sc.Text())
			if blank || !ok {
				continue
			}
			args, ok := argvSplit(rest)
			if !ok {
				continue
			}
			switch keyword {
			case "host":
				for _, a := range args {
					for _, p := range strings.Split(a, ",") {
						if p != "" && !strings.ContainsAny(p, "*?!") && !seen[p] {
							seen[p] = true
							names = append(names, p)
						}
					}
				}
			case "include":
				for _, a := range args {
					pattern := a
					if !filepath.IsAbs(a) && !strings.HasPrefix(a, "~") {
						pattern = "~/.ssh/" + a
					}
					if strings.HasPrefix(pattern, "~") {
						if pattern, err = globTilde(pattern, home); err != nil {
							continue
						}
					}
					matches, _ := glob(pattern)
					for _, m := range matches {
						read(m, depth+1)
					}
				}
			}
		}
	}
	read(configFile, 0)
	return names
}

// IsKeyword reports whether OpenSSH (and so rssh) knows name as an
// ssh_config keyword, in any case.
func IsKeyword(name string) bool {
	_, ok := keywords[asciiLower(name)]
	return ok
}
