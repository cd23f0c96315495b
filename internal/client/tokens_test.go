package client

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

func TestTokensAreKeptForTheirOwnerAlone(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("PASSPORT_CONFIG_DIR", "")
	t.Setenv("PASSPORT_TOKEN", "")
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	server := "https://passport.example.com:8443"
	if _, err := LoadToken(server, now); !errors.Is(err, ErrNoToken) {
		t.Fatalf("before login: %v, want ErrNoToken", err)
	}
	tok := api.Token{Token: "ppt_x", ExpiresAt: now.Add(time.Hour), Principal: api.Principal{Name: "alice"}}
	if err := SaveToken(server, tok); err != nil {
		t.Fatal(err)
	}
	path, _ := TokenPath(server)
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v, mode %v; want 0600", path, err, info.Mode().Perm())
	}
	got, err := LoadToken(server, now)
	if err != nil || got.Token != tok.Token || got.Principal.Name != "alice" {
		t.Fatalf("LoadToken: %+v, %v", got, err)
	}
	if _, err := LoadToken("https://other.example.com", now); !errors.Is(err, ErrNoToken) {
		t.Errorf("another server's token: %v, want ErrNoToken", err)
	}
	if _, err := LoadToken(server, now.Add(time.Hour)); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrNoToken) {
		t.Errorf("an expired token: %v, want ErrTokenExpired, which is ErrNoToken", err)
	}
	t.Setenv("PASSPORT_TOKEN", "ppt_from_ci")
	if got, _ := LoadToken(server, now); got.Token != "ppt_from_ci" {
		t.Errorf("PASSPORT_TOKEN is not preferred: %q", got.Token)
	}
	t.Setenv("PASSPORT_TOKEN", "")
	if err := RemoveToken(server); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadToken(server, now); !errors.Is(err, ErrNoToken) {
		t.Errorf("after logout: %v, want ErrNoToken", err)
	}
}

func TestTokensFollowPassportConfigDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PASSPORT_CONFIG_DIR", dir)
	path, err := TokenPath("https://passport.example.com")
	if err != nil || path != filepath.Join(dir, "servers", "passport.example.com.json") {
		t.Fatalf("TokenPath: %q, %v; want it under PASSPORT_CONFIG_DIR", path, err)
	}
}
