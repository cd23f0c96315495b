package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
		k, err := sshca.NewUserKey()
		if err != nil {
			return requestKey{}, err
		}
		return requestKey{line: k.Line, privatePEM: k.PrivatePEM}, nil
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
