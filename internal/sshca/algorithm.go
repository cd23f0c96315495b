package sshca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Algorithm names a CA key type exactly as the key_algorithm attribute of
// passport_certificate_authority spells it.
type Algorithm string

const (
	Ed25519   Algorithm = "ed25519"
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	RSA4096   Algorithm = "rsa-4096"
)

// Algorithms lists every supported CA key algorithm, in the order
// documentation and error messages show them.
func Algorithms() []Algorithm {
	return []Algorithm{Ed25519, ECDSAP256, ECDSAP384, RSA4096}
}

// ParseAlgorithm checks a key_algorithm value.
func ParseAlgorithm(name string) (Algorithm, error) {
	for _, a := range Algorithms() {
		if string(a) == name {
			return a, nil
		}
	}
	return "", fmt.Errorf("key_algorithm %q is not supported: use one of %s", name, algorithmList())
}

func algorithmList() string {
	names := make([]string, 0, len(Algorithms()))
	for _, a := range Algorithms() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// signatureAlgorithm is the SSH signature algorithm the CA signs
// certificates with. RSA uses rsa-sha2-512: "ssh-rsa" would mean SHA-1,
// which OpenSSH refuses for CA signatures since 8.2 and which is forgeable
// in practice.
func (a Algorithm) signatureAlgorithm() string {
	switch a {
	case Ed25519:
		return ssh.KeyAlgoED25519
	case ECDSAP256:
		return ssh.KeyAlgoECDSA256
	case ECDSAP384:
		return ssh.KeyAlgoECDSA384
	case RSA4096:
		return ssh.KeyAlgoRSASHA512
	}
	return ""
}

// algorithmOf tells which supported algorithm a public key belongs to.
func algorithmOf(pub any) (Algorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return Ed25519, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, nil
		case elliptic.P384():
			return ECDSAP384, nil
		}
		return "", fmt.Errorf("CA key is ECDSA on curve %s: use one of %s", k.Curve.Params().Name, algorithmList())
	case *rsa.PublicKey:
		if k.N.BitLen() != 4096 {
			return "", fmt.Errorf("CA key is RSA with %d bits: only rsa-4096 is supported (use one of %s)", k.N.BitLen(), algorithmList())
		}
		return RSA4096, nil
	}
	return "", fmt.Errorf("CA key of type %T is not supported: use one of %s", pub, algorithmList())
}
