package access

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// maxUsername is the longest name Passport gives a user: it fits every
// distribution's useradd and the host programs' pattern.
const maxUsername = 20

// maxRandomName caps the random part: 12 characters of base32 are 60 bits,
// plenty against collisions, and short enough to read in `who` and logs.
const maxRandomName = 12

// newUsername returns the prefix and random lowercase letters and digits.
func (s *Service) newUsername() string {
	n := min(maxRandomName, maxUsername-len(s.prefix))
	// rand.Text is 26 characters of base32 (A-Z, 2-7) from crypto/rand.
	return s.prefix + strings.ToLower(rand.Text()[:n])
}

// newGrantID returns "ar-" and 16 random hex digits.
func newGrantID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "ar-" + hex.EncodeToString(b)
}
