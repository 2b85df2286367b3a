package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// include handles one Include argument: relative paths are anchored at
// ~/.ssh (user files) or /etc/ssh (system files), the result globbed, and
// each file read with the including block's activity; a Match inside an
// included file does not leak out of it.
func (r *resolver) include(arg string, pos Pos, userConf bool, active *bool, depth int) error {
	if arg == "" {
		return errorf(pos, "keyword include empty argument")
	}
	if arg[0] == '~' && !userConf {
		return errorf(pos, "bad include path %s", arg)
	}
	pattern := arg
	if !filepath.IsAbs(arg) && arg[0] != '~' {
		if userConf {
			pattern = "~/.ssh/" + arg
		} else {
			pattern = "/etc/ssh/" + arg
		}
	}
	if strings.HasPrefix(pattern, "~") {
		exp, err := globTilde(pattern, r.envHome)
		if err != nil {
			return nil // glob(3) returns the pattern unexpanded: no match
		}
		pattern = exp
	}
	matches, err := glob(pattern)
	if err != nil {
		return errorf(pos, "glob failed for %s", pattern)
	}
	if depth+1 > maxIncludeDepth && len(matches) > 0 {
		return fatalf(pos, "too many recursive configuration includes")
	}
	oactive := *active
	for _, m := range matches {
		r.includes++
		if r.includes > maxIncludeFiles {
			return fatalf(pos, "too many included files")
		}
		found, err := r.readFile(m, userConf, true, !oactive, active, depth+1)
		*active = oactive
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) {
				return err
			}
			if !found && !errors.Is(err, fs.ErrNotExist) {
				return errorf(pos, "can't open config file %s: %v", m, unwrapPathErr(err))
			}
		}
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// globTilde expands a leading ~ or ~user as glob(3)'s GLOB_TILDE: plain ~
// is $HOME.
func globTilde(pattern, envHome string) (string, error) {
	rest := pattern[1:]
	i := strings.IndexByte(rest, '/')
	name := rest
	if i >= 0 {
		name = rest[:i]
		rest = rest[i:]
	} else {
		rest = ""
	}
	if name == "" {
		return envHome + rest, nil
	}
	h, err := userHome(name)
	if err != nil {
		return "", err
	}
	return h + rest, nil
}

// glob matches a pattern as glob(3) without flags: '*', '?' and '[...]'
// per path component, a leading '.' only matched explicitly, results in
// byte order.
func glob(pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, "*?[\\") {
		if _, err := os.Lstat(pattern); err != nil {
			return nil, nil
		}
		return []string{pattern}, nil
	}
	dir := "/"
	parts := strings.Split(pattern, "/")
	if !strings.HasPrefix(pattern, "/") {
		dir = "."
	}
	cur := []string{""}
	// A pattern like /*/*/*/* would walk the whole filesystem: give up
	// after a generous number of directory entries.
	budget := maxGlobEntries
	for i, part := range parts {
		if part == "" {
			continue
		}
		last := i == len(parts)-1
		var next []string
		for _, c := range cur {
			base := c
			if base == "" {
				base = dir
				if dir == "/" {
					c = ""
				}
			}
			if !strings.ContainsAny(part, "*?[\\") {
				p := joinGlob(c, part, dir)
				if _, err := os.Lstat(p); err == nil {
					next = append(next, p)
				}
				continue
			}
			if _, err := filepath.Match(part, ""); err != nil {
				return nil, err
			}
			ents, err := os.ReadDir(base)
			if err != nil {
				continue
			}
			budget -= len(ents)
			if budget < 0 {
				return nil, errors.New("too many files")
			}
			for _, e := range ents {
				n := e.Name()
				if n[0] == '.' && part[0] != '.' {
					continue
				}
				if ok, _ := filepath.Match(part, n); ok {
					p := joinGlob(c, n, dir)
					if !last {
						if st, err := os.Stat(p); err != nil || !st.IsDir() {
							continue
						}
					}
					next = append(next, p)
				}
			}
		}
		cur = next
		if len(cur) == 0 {
			return nil, nil
		}
	}
	sort.Strings(cur)
	return cur, nil
}

func joinGlob(prefix, name, root string) string {
	if prefix == "" {
		if root == "/" {
			return "/" + name
		}
		return name
	}
	return prefix + "/" + name
}
