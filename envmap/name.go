package envmap

import (
	"fmt"
	"strings"
)

// VaultVar names the environment variable that holds the admin vault: the
// vault whose items "SA - <env>" hold each environment's token.
const VaultVar = "OP_SA_CREDENTIALS_VAULT"

// ValidName reports whether env is a usable environment name:
// [a-z0-9][a-z0-9_-]*. Names end up in item names, keychain attributes and
// the remote RSSH_ENV, so the alphabet is kept small and unambiguous.
func ValidName(env string) error {
	ok := env != ""
	for i := 0; ok && i < len(env); i++ {
		c := env[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			ok = false
		}
	}
	if ok {
		return nil
	}
	return &Error{
		kind: ErrInvalidName,
		msg:  fmt.Sprintf("invalid environment name %q", env),
		hint: "environment names are lowercase letters, digits, '-' and '_', starting with a letter or digit",
	}
}

// Reference is the 1Password secret reference of env's token in vault.
// This spelling is a contract with the people who create the items.
func Reference(vault, env string) string {
	return "op://" + vault + "/" + ItemName(env) + "/credential"
}

// ItemName is the name of the item that holds env's token.
func ItemName(env string) string { return "SA - " + env }

// VaultFromEnv returns the admin vault named by $OP_SA_CREDENTIALS_VAULT, or
// an error whose hint names the variable. getenv is os.Getenv in rssh.
func VaultFromEnv(getenv func(string) string) (string, error) {
	v := getenv(VaultVar)
	if strings.TrimSpace(v) == "" {
		return "", &Error{
			kind: ErrNoVault,
			msg:  VaultVar + " is not set: rssh needs it to find the environment's token",
			hint: "export " + VaultVar + "=<the vault holding the \"SA - <env>\" items>, or connect without a token with --env none",
		}
	}
	if err := validVault(v); err != nil {
		return "", err
	}
	return v, nil
}

// validVault refuses vault names that would change the reference's shape.
func validVault(v string) error {
	if strings.TrimSpace(v) == "" {
		return &Error{kind: ErrNoVault, msg: "no admin vault given",
			hint: "export " + VaultVar + "=<the vault holding the \"SA - <env>\" items>, or connect without a token with --env none"}
	}
	if strings.ContainsAny(v, "/\x00\r\n") {
		return &Error{kind: ErrNoVault, msg: fmt.Sprintf("%s %q cannot be used in a secret reference", VaultVar, v),
			hint: "name the vault without '/' or line breaks (its ID works too)"}
	}
	return nil
}
