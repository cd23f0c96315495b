package sshca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ContextSigner is a crypto.Signer whose signatures are remote calls (such as
// kms:Sign). The CA binds each signature to the caller's context, so a
// cancelled apply does not wait for KMS.
type ContextSigner interface {
	crypto.Signer
	WithContext(ctx context.Context) crypto.Signer
}

// CA is a certificate authority: a signing key and its SSH public key.
// It is safe for concurrent use.
type CA struct {
	key       crypto.Signer
	algorithm Algorithm
	publicKey ssh.PublicKey
	// signer is built once for local keys; a ContextSigner gets a fresh one
	// per certificate, bound to that request's context.
	signer ssh.MultiAlgorithmSigner
}

// New wraps a signing key, local or remote, as a CA. The key must be one of
// the supported algorithms.
func New(key crypto.Signer) (*CA, error) {
	alg, err := algorithmOf(key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := sshSigner(key, alg)
	if err != nil {
		return nil, err
	}
	return &CA{key: key, algorithm: alg, publicKey: signer.PublicKey(), signer: signer}, nil
}

func sshSigner(key crypto.Signer, alg Algorithm) (ssh.MultiAlgorithmSigner, error) {
	s, err := ssh.NewSignerFromSigner(key)
	if err != nil {
		return nil, fmt.Errorf("using the CA key: %w", err)
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return nil, errors.New("using the CA key: it cannot choose a signature algorithm")
	}
	// Restricting the signer to one algorithm is what keeps an RSA CA off
	// ssh-rsa (SHA-1): Certificate.SignCert uses the first one listed.
	return ssh.NewSignerWithAlgorithms(as, []string{alg.signatureAlgorithm()})
}

// Generate creates a new local CA key.
func Generate(alg Algorithm) (*CA, error) {
	var (
		key crypto.Signer
		err error
	)
	switch alg {
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA4096:
		key, err = rsa.GenerateKey(rand.Reader, 4096)
	default:
		_, err = ParseAlgorithm(string(alg))
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("generating a %s CA key: %w", alg, err)
	}
	return New(key)
}

// ParsePrivateKey reads a local CA key in OpenSSH PEM form, as
// MarshalPrivateKey writes it. Encrypted keys are refused: the key lives in
// Terraform state, which is the thing to protect.
func ParsePrivateKey(pemBytes []byte) (*CA, error) {
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, errors.New("CA private key is encrypted: Passport needs an unencrypted OpenSSH key")
		}
		return nil, fmt.Errorf("CA private key is not a valid OpenSSH private key: %w", err)
	}
	var key crypto.Signer
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		key = *k
	case crypto.Signer:
		key = k
	default:
		return nil, fmt.Errorf("CA private key of type %T is not supported: use one of %s", raw, algorithmList())
	}
	return New(key)
}

// MarshalPrivateKey writes a local CA key in OpenSSH PEM form. KMS-backed
// CAs have no private key to write and return an error.
func (c *CA) MarshalPrivateKey(comment string) ([]byte, error) {
	switch c.key.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		return nil, errors.New("this CA's private key is not local (it lives in KMS) and cannot be exported")
	}
	block, err := ssh.MarshalPrivateKey(c.key, sanitizeComment(comment))
	if err != nil {
		return nil, fmt.Errorf("encoding the CA private key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// Algorithm is the CA key's algorithm.
func (c *CA) Algorithm() Algorithm { return c.algorithm }

// PublicKey is the CA's SSH public key, the one sshd trusts.
func (c *CA) PublicKey() ssh.PublicKey { return c.publicKey }

// Fingerprint is the CA key's SHA256 fingerprint as ssh-keygen -l prints it
// ("SHA256:..." without padding).
func (c *CA) Fingerprint() string { return ssh.FingerprintSHA256(c.publicKey) }

// SameKey reports whether line (authorized_keys form, a comment allowed)
// holds key.
func SameKey(key ssh.PublicKey, line string) bool {
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	return err == nil && bytes.Equal(other.Marshal(), key.Marshal())
}

// AuthorizedKey is the CA public key in authorized_keys form with a comment,
// without a trailing newline; it is also a valid TrustedUserCAKeys line.
func (c *CA) AuthorizedKey(comment string) string {
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(c.publicKey)), "\n")
	if comment = sanitizeComment(comment); comment != "" {
		line += " " + comment
	}
	return line
}

// TrustedUserCAKeysLine is the line a host's TrustedUserCAKeys file holds
// for this CA, newline included. The comment names the CA so an operator
// reading the file on a host knows where the key came from.
func (c *CA) TrustedUserCAKeysLine(name string) string {
	return c.AuthorizedKey("passport-ca:"+name) + "\n"
}

// sanitizeComment keeps a comment on one line of printable ASCII, since
// sshd and people read these files line by line.
func sanitizeComment(s string) string {
	return strings.TrimSpace(printable(s, 128, '_'))
}

// printable maps every rune outside printable ASCII (space included) to
// repl and cuts the result to at most limit bytes.
func printable(s string, limit int, repl byte) string {
	b := make([]byte, 0, min(len(s), limit))
	for _, r := range s {
		if len(b) == limit {
			break
		}
		if r >= 0x20 && r < 0x7f {
			b = append(b, byte(r))
		} else {
			b = append(b, repl)
		}
	}
	return string(b)
}
