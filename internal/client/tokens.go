package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// A person's service token lives in their config directory, one file per
// service, readable by them alone: `passport login --server URL` writes
// it, the CLI and the Terraform provider read it, `passport logout`
// removes it. PASSPORT_TOKEN, when set, is used instead of any file (CI).

// ErrNoToken is returned by LoadToken when nobody signed in to the server,
// and (as ErrTokenExpired, which wraps it) when the sign-in has ended.
var ErrNoToken = errors.New("not signed in to this Passport service")

// ErrTokenExpired is returned by LoadToken when the kept token has passed
// its end: the person signed in once and must do so again. A client that
// may fall back to a machine sign-in must not do so then, or the person's
// requests would silently be made as someone else.
var ErrTokenExpired = fmt.Errorf("%w any more", ErrNoToken)

// TokenPath is where the token for server is kept: servers/<host>.json in
// Passport's config directory (PASSPORT_CONFIG_DIR, else passport in
// $XDG_CONFIG_HOME, ~/.config by default), beside the CLI's requests.
func TokenPath(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server %q is not a URL", server)
	}
	dir, err := ConfigDir()
	if err != nil {
		return "", err
	}
	name := strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(strings.ToLower(u.Host))
	return filepath.Join(dir, "servers", name+".json"), nil
}

// ConfigDir is Passport's directory in the person's config directory:
// PASSPORT_CONFIG_DIR, or passport under the OS's user config directory
// (~/.config/passport on Linux).
func ConfigDir() (string, error) {
	if d := os.Getenv("PASSPORT_CONFIG_DIR"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding your config directory: %w; set PASSPORT_CONFIG_DIR", err)
	}
	return filepath.Join(d, "passport"), nil
}

// SaveToken keeps t for server, mode 0600 in a 0700 directory.
func SaveToken(server string, t api.Token) error {
	path, err := TokenPath(server)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// LoadToken returns the token kept for server: PASSPORT_TOKEN when set,
// else the file. A token past its end is ErrNoToken too: the person must
// sign in again.
func LoadToken(server string, now time.Time) (api.Token, error) {
	if env := os.Getenv("PASSPORT_TOKEN"); env != "" {
		return api.Token{Token: env}, nil
	}
	path, err := TokenPath(server)
	if err != nil {
		return api.Token{}, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return api.Token{}, fmt.Errorf("%w: run passport login --server %s", ErrNoToken, server)
	}
	if err != nil {
		return api.Token{}, err
	}
	var t api.Token
	if err := json.Unmarshal(b, &t); err != nil || t.Token == "" {
		return api.Token{}, fmt.Errorf("%s is not a Passport token file: run passport login --server %s", path, server)
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return api.Token{}, fmt.Errorf("%w: the sign-in ended at %s; run passport login --server %s", ErrTokenExpired, t.ExpiresAt.UTC().Format(time.RFC3339), server)
	}
	return t, nil
}

// RemoveToken forgets the token kept for server; none kept is fine.
func RemoveToken(server string) error {
	path, err := TokenPath(server)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
