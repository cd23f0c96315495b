package hostscript

import (
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// FieldError reports a request field the host programs would refuse. Field
// names the Go field; the message says what a valid value looks like.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "hostscript: " + e.Field + " " + e.Reason
}

// Field rules. programs/lib.sh holds the same patterns (RE_*); a test keeps
// the two in step. They are deliberately narrow: every value ends up in file
// names, sshd, useradd or sudoers on a host running as root.
var (
	reUsername  = regexp.MustCompile(`^(?:[a-z][a-z0-9-]{0,19})$`)
	reRequestID = regexp.MustCompile(`^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$`)
	reRequester = regexp.MustCompile(`^(?:[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127})$`)
)

// maxExpiry is the largest epoch the host pattern RE_EPOCH accepts (11 digits).
const maxExpiry = 99999999999

// caKeyTypes are the CA key types Passport signs with; the host accepts the
// same list (RE_CA_TYPE).
var caKeyTypes = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA,
}

const maxCAKeyBase64 = 2048 // CA_KEY_MAX in lib.sh; an RSA-8192 key fits

func (g Grant) validate() error {
	if err := validUsername(g.Username); err != nil {
		return err
	}
	if !reRequestID.MatchString(g.RequestID) {
		return &FieldError{"RequestID", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"}
	}
	if !reRequester.MatchString(g.Requester) {
		return &FieldError{"Requester", "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', '@', '+', ':' and '-', starting with a letter or digit"}
	}
	if err := validExpiry(g.ExpiresAt); err != nil {
		return err
	}
	if g.Serial == 0 {
		return &FieldError{"Serial", "must be the certificate's serial, not 0"}
	}
	return nil
}

func validUsername(name string) error {
	if !reUsername.MatchString(name) {
		return &FieldError{"Username", "must be 1-20 characters of a-z, 0-9 and '-', starting with a letter"}
	}
	return nil
}

func validExpiry(t time.Time) error {
	if s := t.Unix(); t.IsZero() || s <= 0 || s > maxExpiry {
		return &FieldError{"ExpiresAt", "must be a time after 1970 and before the year 5000"}
	}
	return nil
}

// caKeyFields checks that key is one plain public key of a type Passport
// uses, in authorized_keys form (a trailing comment is dropped), and returns
// its type and base64 blob in canonical form.
func caKeyFields(key string) (keyType, blob string, err error) {
	bad := func(reason string) (string, string, error) {
		return "", "", &FieldError{"CAPublicKey", reason}
	}
	if strings.ContainsAny(strings.TrimSuffix(key, "\n"), "\x00\r\n") {
		return bad("must be a single line")
	}
	// The comment is dropped: it is free text and the host has no use for it.
	pub, _, options, rest, perr := ssh.ParseAuthorizedKey([]byte(key))
	if perr != nil {
		return bad("is not an SSH public key in authorized_keys form (\"ssh-ed25519 AAAA...\")")
	}
	if len(options) > 0 || len(rest) > 0 {
		return bad("must be one key without options")
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		return bad("must be the CA's public key, not a certificate")
	}
	keyType = pub.Type()
	if !slices.Contains(caKeyTypes, keyType) {
		return bad("has key type " + keyType + "; use ed25519, ecdsa-p256/384/521 or rsa")
	}
	if ck, ok := pub.(ssh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			return bad(fmt.Sprintf("is an RSA key of %d bits; use at least 2048", rk.N.BitLen()))
		}
	}
	blob = base64.StdEncoding.EncodeToString(pub.Marshal())
	if len(blob) > maxCAKeyBase64 {
		return bad("is too large")
	}
	return keyType, blob, nil
}
