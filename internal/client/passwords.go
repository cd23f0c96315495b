package client

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// PasswordKeyBits is the size of the one-off RSA key Windows hosts seal
// their users' passwords to, as in direct mode.
const PasswordKeyBits = 3072

// PasswordKey is a one-off RSA key a client makes for one create or
// targets change: each Windows host provisioned seals its user's
// password to the public half, the service passes the ciphertext
// through, and only this key opens it. Drop it once Open has run.
type PasswordKey struct {
	key *rsa.PrivateKey
}

// NewPasswordKey makes a PasswordKey.
func NewPasswordKey() (*PasswordKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, PasswordKeyBits)
	if err != nil {
		return nil, fmt.Errorf("making the key Windows passwords are sealed to: %w", err)
	}
	return &PasswordKey{key: k}, nil
}

// Public is the public half as the API's password_key takes it: base64 of
// its PKIX DER form. A nil key, for a call with no Windows target, is
// empty.
func (k *PasswordKey) Public() string {
	if k == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	if err != nil {
		// An RSA public key always marshals.
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// Open opens every password in req.SealedPasswords, by instance id. A
// password that does not open (sealed to another key, tampered with, or
// breaking Passport's rules) is left out and named in the error, which
// never holds a password or its ciphertext; the others are returned all
// the same.
func (k *PasswordKey) Open(req api.Request) (map[string]string, error) {
	out := make(map[string]string, len(req.SealedPasswords))
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(req.SealedPasswords)) {
		pw, err := hostscript.OpenSealedPassword(k.key, req.Username, req.SealedPasswords[id])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: user %s was created, but the password the host sealed to this run's key does not open (%v); nobody can log on as it there: end the request, or remove the target and add it again", id, req.Username, err))
			continue
		}
		out[id] = pw
	}
	return out, errors.Join(errs...)
}
