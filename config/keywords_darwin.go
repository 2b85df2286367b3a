//go:build darwin

package config

// platformKeywords are the keywords the platform's own ssh accepts beyond
// OpenSSH's. Apple's ssh takes "UseKeychain yes|no" (look up and store key
// passphrases in the macOS keychain), and many macOS configs carry it
// without IgnoreUnknown, so rssh built for darwin accepts it too, checks
// its value as a yes/no flag as Apple's ssh does, and ignores it: rssh
// neither reads passphrases from nor stores them in the keychain (it asks
// on the terminal; keys already in the agent, such as those Apple's
// `ssh-add --apple-use-keychain` loaded, work as usual). -G does not print
// it, as OpenSSH's does not.
var platformKeywords = map[string]keyword{"usekeychain": kept(kFlag)}
