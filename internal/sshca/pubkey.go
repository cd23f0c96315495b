package sshca

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

const (
	// MinUserRSABits is the smallest RSA user key Passport certifies.
	MinUserRSABits = 2048
	// maxUserRSABits matches OpenSSH's own upper bound.
	maxUserRSABits = 16384
	// maxPublicKeyLine fits a 16384-bit RSA key with a long comment.
	maxPublicKeyLine = 8192
)

// userKeyTypes are the key types Passport certifies. DSA is gone from
// OpenSSH; FIDO security keys (sk-*) are welcome.
var userKeyTypes = map[string]bool{
	ssh.KeyAlgoED25519:    true,
	ssh.KeyAlgoECDSA256:   true,
	ssh.KeyAlgoECDSA384:   true,
	ssh.KeyAlgoECDSA521:   true,
	ssh.KeyAlgoRSA:        true,
	ssh.KeyAlgoSKED25519:  true,
	ssh.KeyAlgoSKECDSA256: true,
}

// ParseUserPublicKey reads the public key a person hands Passport, one
// authorized_keys line such as "ssh-ed25519 AAAA... alice@laptop". It is
// strict where ssh.ParseAuthorizedKey is lenient: exactly one key, no
// options (from=, command=, ...), nothing after the comment, no control
// characters, no certificates, no weak keys. The comment is returned as
// given.
func ParseUserPublicKey(line string) (ssh.PublicKey, string, error) {
	if len(line) > maxPublicKeyLine {
		return nil, "", fmt.Errorf("public_key is %d bytes long: at most %d are allowed", len(line), maxPublicKeyLine)
	}
	// One trailing newline is what `cat id_ed25519.pub` gives; anything else
	// multi-line is refused, because ParseAuthorizedKey would skip leading
	// comment lines and silently pick a later key.
	in := []byte(line)
	in = bytes.TrimSuffix(in, []byte("\n"))
	in = bytes.TrimSuffix(in, []byte("\r"))
	if len(bytes.TrimSpace(in)) == 0 {
		return nil, "", errors.New("public_key is empty: give one line such as the contents of ~/.ssh/id_ed25519.pub")
	}
	if !utf8.Valid(in) {
		return nil, "", errors.New("public_key is not valid UTF-8")
	}
	for _, r := range string(in) {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return nil, "", fmt.Errorf("public_key contains control character %U: give exactly one key on one line", r)
		}
	}
	key, comment, options, rest, err := ssh.ParseAuthorizedKey(in)
	if err != nil {
		return nil, "", fmt.Errorf("public_key is not an SSH public key in authorized_keys form (\"ssh-ed25519 AAAA... comment\"): %w", err)
	}
	if len(options) > 0 {
		return nil, "", errors.New("public_key has authorized_keys options before the key: give the key alone")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, "", errors.New("public_key has more than one line: give exactly one key")
	}
	if err := checkUserKey(key); err != nil {
		return nil, "", err
	}
	return key, comment, nil
}

// checkUserKey refuses keys Passport will not certify.
func checkUserKey(key ssh.PublicKey) error {
	if _, ok := key.(*ssh.Certificate); ok {
		return errors.New("public_key is a certificate, not a key: give the plain public key (id_*.pub, not *-cert.pub)")
	}
	if !userKeyTypes[key.Type()] {
		return fmt.Errorf("public_key type %s is not allowed: use ssh-ed25519 (recommended), ecdsa-sha2-nistp256/384/521, a security key (sk-*), or ssh-rsa of at least %d bits", key.Type(), MinUserRSABits)
	}
	if key.Type() == ssh.KeyAlgoRSA {
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return errors.New("public_key is an RSA key Passport cannot inspect")
		}
		bits := ck.CryptoPublicKey().(*rsa.PublicKey).N.BitLen()
		if bits < MinUserRSABits {
			return fmt.Errorf("public_key is a %d-bit RSA key: at least %d bits are required (ssh-keygen -t ed25519 makes a better key)", bits, MinUserRSABits)
		}
		if bits > maxUserRSABits {
			return fmt.Errorf("public_key is a %d-bit RSA key: at most %d bits are supported", bits, maxUserRSABits)
		}
	}
	return nil
}
