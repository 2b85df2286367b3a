package envmap

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		env string
		ok  bool
	}{
		{"production", true},
		{"dev", true},
		{"staging-eu_1", true},
		{"0day", true},
		{"a", true},
		{"x-", true},
		{"", false},
		{"Production", false},
		{"-dev", false},
		{"_dev", false},
		{"dev env", false},
		{"dev/prod", false},
		{"dév", false},
		{"dev.prod", false},
		{"dev\n", false},
		{"none;rm", false},
	} {
		err := ValidName(tc.env)
		if (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.env, err, tc.ok)
		}
		if err != nil {
			var e *Error
			if !errors.Is(err, ErrInvalidName) || !errors.As(err, &e) || e.HintText() == "" {
				t.Errorf("ValidName(%q): want an ErrInvalidName with a hint, got %v", tc.env, err)
			}
		}
	}
}

func TestReference(t *testing.T) {
	if got, want := Reference("Admin", "production"), "op://Admin/SA - production/credential"; got != want {
		t.Errorf("Reference = %q, want %q", got, want)
	}
}

func TestVaultFromEnv(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	_, err := VaultFromEnv(getenv)
	var e *Error
	if !errors.Is(err, ErrNoVault) || !errors.As(err, &e) || !strings.Contains(e.HintText(), VaultVar) || !strings.Contains(err.Error(), VaultVar) {
		t.Fatalf("unset vault: got %v, want ErrNoVault naming %s in message and hint", err, VaultVar)
	}
	env[VaultVar] = "Admin"
	if v, err := VaultFromEnv(getenv); err != nil || v != "Admin" {
		t.Errorf("VaultFromEnv = %q, %v", v, err)
	}
	env[VaultVar] = "a/b"
	if _, err := VaultFromEnv(getenv); !errors.Is(err, ErrNoVault) {
		t.Errorf("vault with '/': got %v, want an error", err)
	}
}
