// Package winpass holds the rules for the passwords Passport's Windows host
// programs generate. The host generates the password (so it never travels in
// Run Command parameters) from the same Alphabet; Passport re-checks what
// comes back with Check, because a host's output is hostile.
package winpass

import (
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
)

// Alphabet is every character a generated password may hold. It leaves out
// what breaks RDP clients, shells and keyboard layouts: quotes, backslash,
// backtick, whitespace, %^&|<>$;{}[]()=,: , glyphs that look alike
// (0 O o 1 l I) and y/z, which QWERTZ layouts swap. The Windows programs
// carry the same string; a test keeps them equal.
const Alphabet = "ABCDEFGHJKLMNPQRSTUVWXabcdefghijkmnpqrstuvwx23456789!#*+-./?@_~"

const (
	// MinLength is the shortest password Check accepts.
	MinLength = 24
	// DefaultLength is what Generate produces and the host programs use.
	DefaultLength = 28
	// maxLength bounds what Check accepts from a host.
	maxLength = 128
)

const (
	uppers  = "ABCDEFGHJKLMNPQRSTUVWX"
	lowers  = "abcdefghijkmnpqrstuvwx"
	digits  = "23456789"
	symbols = "!#*+-./?@_~"
)

// Generate returns a random password of DefaultLength from Alphabet that
// passes Check for any username of 3 or more characters it does not contain.
func Generate() (string, error) {
	max := big.NewInt(int64(len(Alphabet)))
	for attempt := 0; attempt < 100; attempt++ {
		b := make([]byte, DefaultLength)
		for i := range b {
			n, err := rand.Int(rand.Reader, max)
			if err != nil {
				return "", errors.New("winpass: reading random bytes: " + err.Error())
			}
			b[i] = Alphabet[n.Int64()]
		}
		if classes(string(b)) == nil {
			return string(b), nil
		}
	}
	return "", errors.New("winpass: could not draw a password with every character class")
}

// Check reports whether pw is a password Passport's host programs could have
// generated for username: length, alphabet, all four character classes, and
// not containing the username (Windows refuses a password holding the
// account name when the name has 3 or more characters). Errors never include
// the password.
func Check(pw, username string) error {
	if len(pw) < MinLength {
		return errors.New("winpass: password is shorter than 24 characters")
	}
	if len(pw) > maxLength {
		return errors.New("winpass: password is longer than 128 characters")
	}
	for i := 0; i < len(pw); i++ {
		if strings.IndexByte(Alphabet, pw[i]) < 0 {
			return errors.New("winpass: password has a character outside the Passport alphabet")
		}
	}
	if err := classes(pw); err != nil {
		return err
	}
	if len(username) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(username)) {
		return errors.New("winpass: password contains the username")
	}
	return nil
}

func classes(pw string) error {
	for _, c := range []struct{ set, name string }{
		{uppers, "an upper-case letter"}, {lowers, "a lower-case letter"}, {digits, "a digit"}, {symbols, "a symbol"},
	} {
		if !strings.ContainsAny(pw, c.set) {
			return errors.New("winpass: password lacks " + c.name)
		}
	}
	return nil
}
