package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Session is what `passport login` stores: the claims for display, and the
// signed response so every consumer can verify it again (Session.Verify).
type Session struct {
	Subject    string    `json:"subject"`
	Groups     []string  `json:"groups"`
	Expires    time.Time `json:"expires"`
	Issuer     string    `json:"issuer"`
	SPEntityID string    `json:"sp_entity_id"`
	// ACSURL is where the response was delivered; its Recipient says so.
	ACSURL string `json:"acs_url"`
	// Metadata is where the IdP metadata came from at login (file or URL).
	Metadata string `json:"metadata"`
	// Response is the SAML response XML exactly as the IdP signed it.
	Response []byte `json:"response"`
}

// ErrNoSession is returned by LoadSession when nobody has signed in.
var ErrNoSession = errors.New("no SAML session; run passport login")

// DefaultSessionPath is where `passport login` keeps the session:
// passport/session.json under the user's config directory.
func DefaultSessionPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("cannot find your config directory for the session: %w", err)
	}
	return filepath.Join(dir, "passport", "session.json"), nil
}

// SaveSession writes s to path readable by its owner alone (directory
// 0700, file 0600), replacing any previous session atomically.
func SaveSession(path string, s Session) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the session directory: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; the session is a
	// credential, so tighten it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("cannot restrict the session directory: %w", err)
	}
	buf, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".session-*")
	if err != nil {
		return fmt.Errorf("cannot write the session: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(buf); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write the session: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write the session: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot write the session: %w", err)
	}
	return nil
}

// LoadSession reads the session at path; ErrNoSession when there is none.
// It does not verify it: call Session.Verify before trusting it.
func LoadSession(path string) (Session, error) {
	buf, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("cannot read the SAML session: %w", err)
	}
	var s Session
	if err := json.Unmarshal(buf, &s); err != nil {
		return Session{}, fmt.Errorf("the SAML session %s is damaged (%v); run passport login", path, err)
	}
	return s, nil
}

// RemoveSession deletes the session at path; a missing one is not an error.
func RemoveSession(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove the SAML session: %w", err)
	}
	return nil
}

// Verify verifies the stored response again with opts (RequestID is
// ignored: the request was consumed at login). The ACS URL defaults to the
// one recorded at login: it was a loopback port of that login, and the
// signed Recipient must match it. The IdP metadata and the SP entity ID
// must come from the caller's own configuration, never from the session
// file, which whoever can write it could edit.
func (s Session) Verify(opts Options) (Claims, error) {
	opts.RequestID = ""
	if opts.ACSURL == "" {
		opts.ACSURL = s.ACSURL
	}
	return Verify(s.Response, opts)
}
