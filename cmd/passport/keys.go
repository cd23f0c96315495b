package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// requestKey is the SSH key a request is made for. Its private half never
// leaves this machine: Passport signs the public half.
type requestKey struct {
	// line is the public key in authorized_keys form.
	line string
	// privatePEM is the private key when this command made the pair; the
	// request store keeps it (mode 0600).
	privatePEM string
	// identityFile is the person's own private key, when --public-key
	// named a .pub file with its private key beside it.
	identityFile string
}

// loadRequestKey reads the person's public key from file, or makes a fresh
// ed25519 pair when file is empty.
func loadRequestKey(file string) (requestKey, error) {
	if file == "" {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return requestKey{}, fmt.Errorf("making a key pair: %w", err)
		}
		sshPub, err := ssh.NewPublicKey(pub)
		if err != nil {
			return requestKey{}, err
		}
		block, err := ssh.MarshalPrivateKey(priv, "passport")
		if err != nil {
			return requestKey{}, fmt.Errorf("encoding the private key: %w", err)
		}
		return requestKey{line: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), privatePEM: string(pem.EncodeToMemory(block))}, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return requestKey{}, fmt.Errorf("--public-key: %w", err)
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		return requestKey{}, fmt.Errorf("--public-key %s is a private key: give its public half (%s.pub); the private key never leaves this machine", file, file)
	}
	if _, _, err := sshca.ParseUserPublicKey(string(b)); err != nil {
		return requestKey{}, fmt.Errorf("--public-key %s: %w", file, err)
	}
	k := requestKey{line: strings.TrimSpace(string(b))}
	// ssh finds the private key beside its .pub, as ssh-keygen writes them.
	if priv, ok := strings.CutSuffix(file, ".pub"); ok {
		if abs, err := filepath.Abs(priv); err == nil {
			if _, err := os.Stat(abs); err == nil {
				k.identityFile = abs
			} else if !errors.Is(err, fs.ErrNotExist) {
				return requestKey{}, fmt.Errorf("--public-key: the private key beside it: %w", err)
			}
		}
	}
	return k, nil
}

// sameKey says whether two authorized_keys lines hold the same key,
// whatever their comments.
func sameKey(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return len(fa) >= 2 && len(fb) >= 2 && fa[0] == fb[0] && fa[1] == fb[1]
}

// passwordKeyBits is the size of the one-off key Windows hosts seal their
// passwords to, as the access core's own in direct mode.
const passwordKeyBits = 3072

// sealKey is a one-off RSA key Windows passwords are sealed to through
// the service: the service passes the ciphertext on and cannot read it.
type sealKey struct{ key *rsa.PrivateKey }

func newSealKey() (*sealKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, passwordKeyBits)
	if err != nil {
		return nil, fmt.Errorf("making the key Windows passwords are sealed to: %w", err)
	}
	return &sealKey{k}, nil
}

// public is the key as the API's password_key takes it.
func (k *sealKey) public() string {
	der, _ := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// open opens the passwords of user, by instance id. One that does not open
// is named in the error, without it or its ciphertext.
func (k *sealKey) open(user string, sealed map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(sealed))
	var errs []error
	for id, s := range sealed {
		pw, err := hostscript.OpenSealedPassword(k.key, user, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: the password its host sealed does not open (%v): nobody can log on as %s there; end the request and ask again", id, err, user))
			continue
		}
		out[id] = pw
	}
	return out, errors.Join(errs...)
}
