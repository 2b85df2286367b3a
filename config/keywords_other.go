//go:build !darwin

package config

// platformKeywords are the keywords the platform's own ssh accepts beyond
// OpenSSH's: none off macOS, where UseKeychain is a bad configuration
// option as in OpenSSH (keywords_darwin.go).
var platformKeywords = map[string]keyword{}
