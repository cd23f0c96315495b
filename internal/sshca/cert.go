package sshca

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// MaxWindow is the longest access window Passport ever grants.
	MaxWindow = 12 * time.Hour

	// ClockSkew is how far a certificate is back-dated. Targets' clocks
	// drift, and a certificate signed "now" for a host running a few seconds
	// behind would be refused as not yet valid in the first moments of the
	// window, exactly when the person is trying to log in.
	ClockSkew = time.Minute

	// maxKeyIDLen bounds the key id, which sshd writes into every log line
	// about the login.
	maxKeyIDLen = 256

	maxSourceAddresses = 32
)

var usernamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// reservedUsernames are accounts that exist on stock images. Passport's
// users are always fresh (prefix + random), so a request naming one of
// these is a bug or an attack; refusing it here means no code path can ever
// mint a certificate for root, whatever the host's sshd configuration.
var reservedUsernames = map[string]bool{
	"root": true, "admin": true, "daemon": true, "bin": true, "sys": true, "sync": true,
	"nobody": true, "sshd": true, "ubuntu": true, "ec2-user": true, "centos": true,
	"debian": true, "fedora": true, "admin-user": true, "ssm-user": true,
}

// CertRequest is what a certificate is signed for: one user key, one
// short-lived user, one window.
type CertRequest struct {
	// PublicKey is the requester's key (ParseUserPublicKey reads one).
	PublicKey ssh.PublicKey
	// Username is the short-lived user and the certificate's only principal.
	Username string
	// KeyID names the request and the requester; build it with KeyID.
	KeyID string
	// ValidAfter and ValidBefore are the access window.
	ValidAfter, ValidBefore time.Time
	// SourceAddresses, when set, limit where the certificate may be used
	// from (IP addresses or CIDR prefixes), e.g. only through the tunnel.
	SourceAddresses []string

	// PermitPTY allows an interactive terminal. The forwarding permissions
	// are off unless policy grants them; user-rc is always off, so a
	// short-lived user cannot run ~/.ssh/rc at login.
	PermitPTY             bool
	PermitAgentForwarding bool
	PermitPortForwarding  bool
	PermitX11Forwarding   bool
}

// Sign issues a user certificate for req. The certificate's principals are
// exactly [req.Username], its validity is the window back-dated by
// ClockSkew, and its serial is random.
func (c *CA) Sign(ctx context.Context, req CertRequest) (*ssh.Certificate, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	cert := &ssh.Certificate{
		Key:             req.PublicKey,
		Serial:          serial,
		CertType:        ssh.UserCert,
		KeyId:           req.KeyID,
		ValidPrincipals: []string{req.Username},
		ValidAfter:      uint64(req.ValidAfter.Add(-ClockSkew).Unix()),
		ValidBefore:     uint64(req.ValidBefore.Unix()),
		Permissions:     req.permissions(),
	}
	signer := c.signer
	if cs, ok := c.key.(ContextSigner); ok {
		if signer, err = sshSigner(cs.WithContext(ctx), c.algorithm); err != nil {
			return nil, err
		}
	}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		return nil, fmt.Errorf("signing the certificate for user %s: %w", req.Username, err)
	}
	return cert, nil
}

func (req *CertRequest) permissions() ssh.Permissions {
	ext := map[string]string{}
	for name, on := range map[string]bool{
		"permit-pty":              req.PermitPTY,
		"permit-agent-forwarding": req.PermitAgentForwarding,
		"permit-port-forwarding":  req.PermitPortForwarding,
		"permit-X11-forwarding":   req.PermitX11Forwarding,
	} {
		if on {
			ext[name] = ""
		}
	}
	p := ssh.Permissions{Extensions: ext}
	if len(req.SourceAddresses) > 0 {
		p.CriticalOptions = map[string]string{"source-address": strings.Join(req.SourceAddresses, ",")}
	}
	return p
}

func (req *CertRequest) validate() error {
	if req.PublicKey == nil {
		return errors.New("public_key is missing: give the requester's SSH public key")
	}
	if err := checkUserKey(req.PublicKey); err != nil {
		return err
	}
	if !usernamePattern.MatchString(req.Username) {
		return fmt.Errorf("username %q is invalid: it must match %s", printable(req.Username, 40, '?'), usernamePattern)
	}
	if reservedUsernames[req.Username] {
		return fmt.Errorf("username %q is a system account: certificates are only issued for Passport's own short-lived users", req.Username)
	}
	if err := checkKeyID(req.KeyID); err != nil {
		return err
	}
	if req.ValidAfter.IsZero() || req.ValidBefore.IsZero() {
		return errors.New("window is incomplete: both its start (valid_after) and end (valid_before) are required")
	}
	if req.ValidAfter.Add(-ClockSkew).Unix() < 0 {
		return fmt.Errorf("window start %s is before 1970", req.ValidAfter.UTC().Format(time.RFC3339))
	}
	if !req.ValidBefore.After(req.ValidAfter) {
		return fmt.Errorf("window is inverted or empty: valid_before %s is not after valid_after %s",
			req.ValidBefore.UTC().Format(time.RFC3339), req.ValidAfter.UTC().Format(time.RFC3339))
	}
	if d := req.ValidBefore.Sub(req.ValidAfter); d > MaxWindow+ClockSkew {
		return fmt.Errorf("window of %s is longer than the %s hard cap: shorten the duration", d, MaxWindow)
	}
	if len(req.SourceAddresses) > maxSourceAddresses {
		return fmt.Errorf("source_addresses has %d entries: at most %d are allowed", len(req.SourceAddresses), maxSourceAddresses)
	}
	for _, a := range req.SourceAddresses {
		if !validSourceAddress(a) {
			return fmt.Errorf("source_addresses entry %q is not an IP address or CIDR prefix (without zone or host bits)", printable(a, 64, '?'))
		}
	}
	return nil
}

// validSourceAddress accepts an address or a prefix as sshd reads them in
// source-address. IPv6 zones are refused: netip takes any text after '%',
// commas included, so "fe80::1%x,0.0.0.0/0" would smuggle a second, wider
// entry into the comma-joined option. Prefixes with host bits set are
// refused because sshd rejects them, which would make the certificate
// useless.
func validSourceAddress(s string) bool {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p == p.Masked()
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

func checkKeyID(id string) error {
	switch {
	case id == "":
		return errors.New("key_id is empty: build one with sshca.KeyID")
	case len(id) > maxKeyIDLen:
		return fmt.Errorf("key_id is %d bytes long: at most %d are allowed", len(id), maxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] >= 0x7f {
			return errors.New("key_id contains control or non-ASCII characters: build it with sshca.KeyID")
		}
	}
	return nil
}

// KeyID builds a certificate key id naming the request, the requester and
// the requester's groups, e.g. `passport request=req-123
// subject=alice@example.com groups=ops,oncall`. sshd writes it into its log
// on every login, so anything outside printable ASCII (newlines that would
// forge log lines, terminal escapes) becomes '_', spaces inside a field
// (and commas inside a group) become '_' so fields stay separable, and each
// field is cut short. Groups that do not fit the key id's 256 bytes are
// left out and counted: "groups=ops,dev,+3".
func KeyID(requestID, subject string, groups ...string) string {
	field := func(s string, n int) string {
		s = strings.ReplaceAll(printable(s, n, '_'), " ", "_")
		if s == "" {
			return "-"
		}
		return s
	}
	id := "passport request=" + field(requestID, 64) + " subject=" + field(subject, 100)
	if len(groups) == 0 {
		return id
	}
	id += " groups="
	for i, g := range groups {
		g = strings.ReplaceAll(field(g, 64), ",", "_")
		sep := ","
		if i == 0 {
			sep = ""
		}
		// Room for this group and for counting those after it.
		rest := ""
		if left := len(groups) - i - 1; left > 0 {
			rest = ",+" + strconv.Itoa(left)
		}
		if len(id)+len(sep)+len(g)+len(rest) > maxKeyIDLen {
			return id + sep + "+" + strconv.Itoa(len(groups)-i)
		}
		id += sep + g
	}
	return id
}

// randomSerial draws a serial from crypto/rand, so serials are unguessable
// and never collide across reconcilers. Zero is skipped: revocation lists
// give serial 0 no meaning.
func randomSerial() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("drawing a certificate serial: %w", err)
		}
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s, nil
		}
	}
}
