package sshca

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// UserKey is a key pair made for a person who brought no key of their own.
type UserKey struct {
	// Public is the public half; Line the same in authorized_keys form,
	// without comment or newline.
	Public ssh.PublicKey
	Line   string
	// PrivatePEM is the private half in OpenSSH PEM form. It is a secret:
	// it stays with whoever made the pair (the Terraform state, the CLI's
	// request store) and is never sent to a Passport service.
	PrivatePEM string
}

// NewUserKey makes an Ed25519 key pair for a person who gave no public
// key. The direct access core and the service's clients (the provider in
// service mode, the CLI) make it the same way, so a generated key looks
// alike whoever made it.
func NewUserKey() (UserKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return UserKey{}, fmt.Errorf("generating a key pair: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return UserKey{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "passport")
	if err != nil {
		return UserKey{}, fmt.Errorf("encoding the generated private key: %w", err)
	}
	return UserKey{
		Public:     sshPub,
		Line:       strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sshPub)), "\n"),
		PrivatePEM: string(pem.EncodeToMemory(block)),
	}, nil
}
