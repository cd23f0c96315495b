package access

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
)

// grantID is the form of a grant's id.
var grantID = regexp.MustCompile(`^ar-[0-9a-f]{16}$`)

// ValidGrantID reports whether id has the form of a grant's id.
func ValidGrantID(id string) bool { return grantID.MatchString(id) }

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

// NewGrantID returns a fresh grant id, "ar-" and 16 random hex digits,
// for a caller that picks the id before asking (Request.ID).
func NewGrantID() string { return newGrantID() }

// newGrantID returns "ar-" and 16 random hex digits.
func newGrantID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "ar-" + hex.EncodeToString(b)
}
