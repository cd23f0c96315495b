package access

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// Limits on a request's free text.
const (
	minReason    = 10
	maxReason    = 256
	maxRequester = 256
)

// checkReason refuses reasons that would not make an audit trail readable:
// too short to say anything, too long to show, or carrying control or
// invisible formatting characters (newlines that forge log lines, bidi
// overrides that make a reason read differently than it is stored).
func checkReason(reason string) error {
	if !utf8.ValidString(reason) {
		return invalid("reason", "reason is not valid UTF-8")
	}
	for _, r := range reason {
		if !unicode.IsPrint(r) {
			return invalid("reason", "reason contains the non-printable character %U: write it on one line of plain text", r)
		}
	}
	n := utf8.RuneCountInString(strings.TrimSpace(reason))
	switch {
	case n < minReason:
		return invalid("reason", "reason is %d characters long: say why you need access in at least %d", n, minReason)
	case utf8.RuneCountInString(reason) > maxReason:
		return invalid("reason", "reason is %d characters long: at most %d are allowed", utf8.RuneCountInString(reason), maxReason)
	}
	return nil
}

// checkTargets refuses an empty, oversized or repetitive target list and
// malformed instance ids, naming the entry.
func checkTargets(ids []string) error {
	if len(ids) == 0 {
		return invalid("targets", "targets is empty: give at least one instance id")
	}
	if len(ids) > MaxTargets {
		return invalid("targets", "targets has %d instances: at most %d fit one request; split it", len(ids), MaxTargets)
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		// fleet checks too; checking here lets the error name the field as
		// the user wrote it.
		if !fleet.InstanceIDPattern.MatchString(id) {
			return invalid("targets", "targets[%d] %q is not an instance id: %s", i, printable(id, 40), fleet.InstanceIDRule)
		}
		if j, dup := seen[id]; dup {
			return invalid("targets", "targets[%d] %s is already targets[%d]: list each instance once", i, id, j)
		}
		seen[id] = i
	}
	return nil
}

// checkDuration fills in the default and enforces the hard cap.
func checkDuration(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultDuration, nil
	case d < time.Minute:
		return 0, invalid("duration", "duration %s is too short: give at least 1m", human(d))
	case d > MaxDuration:
		return 0, invalid("duration", "duration %s is longer than the %s hard cap: ask for less", human(d), human(MaxDuration))
	}
	return d, nil
}

// human writes a duration as people write it: 12h, 1h30m, 45s.
func human(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func checkRequester(r string) error {
	switch {
	case strings.TrimSpace(r) == "":
		return invalid("requester", "requester is empty: name who asks (their AWS principal ARN or SAML subject)")
	case len(r) > maxRequester:
		return invalid("requester", "requester is %d bytes long: at most %d are allowed", len(r), maxRequester)
	}
	for _, c := range r {
		if c < 0x21 || c > 0x7e {
			return invalid("requester", "requester contains the character %U: use printable ASCII without spaces", c)
		}
	}
	return nil
}

// checkGroups refuses groups the ledger could not record, naming the
// first that breaks its rule.
func checkGroups(groups []string) error {
	if len(groups) > ledger.MaxGroups {
		return invalid("groups", "groups: the requester is in %d groups; Passport records at most %d: narrow the identity store's groups attribute", len(groups), ledger.MaxGroups)
	}
	for i, g := range groups {
		if !ledger.ValidGroupName(g) {
			return invalid("groups", "groups[%d] %.40q must be 1 to %d bytes without control characters", i, g, ledger.MaxGroupName)
		}
	}
	return nil
}

// hostRequester is the requester as a host's grant record can hold it. The
// host accepts a narrow alphabet (no '/', which every ARN has), so anything
// else becomes '_'; the certificate's key id keeps the full name.
func hostRequester(r string) string {
	b := []byte(r)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._@+:-", c) >= 0
		if !ok || i == 0 && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if b[0] == '_' {
		b[0] = 'x'
	}
	return string(b[:min(len(b), 128)])
}

// userKey is the key a certificate is issued for, and the private half when
// Passport made the pair.
type userKey struct {
	public     ssh.PublicKey
	line       string // authorized_keys form, without comment or newline
	privatePEM string
}

// requesterKey reads the requester's public key, or generates an ed25519
// pair when none is given.
func requesterKey(line string) (userKey, error) {
	if line == "" {
		k, err := sshca.NewUserKey()
		if err != nil {
			return userKey{}, err
		}
		return userKey{public: k.Public, line: k.Line, privatePEM: k.PrivatePEM}, nil
	}
	pub, _, err := sshca.ParseUserPublicKey(line)
	if err != nil {
		return userKey{}, &Error{Class: Invalid, Field: "public_key", Err: err}
	}
	return userKey{public: pub, line: authorizedKey(pub)}, nil
}

func authorizedKey(k ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n")
}

// checkCA refuses a missing CA, or one other than the grant's: a grant's
// hosts trust exactly the CA that signed it.
func checkCA(ca *sshca.CA, g *Grant) error {
	if ca == nil {
		return invalid("certificate_authority", "certificate_authority is missing: give the CA that signs the certificate")
	}
	if g != nil && authorizedKey(ca.PublicKey()) != keyOnly(g.CAPublicKey) {
		return invalid("certificate_authority", "certificate_authority %s is not the CA that signed grant %s: a new CA needs a new request", ca.Fingerprint(), g.ID)
	}
	return nil
}

// keyOnly drops an authorized_keys comment.
func keyOnly(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[0] + " " + f[1]
}
