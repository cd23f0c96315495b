// Package access is Passport's domain core for Linux targets: it grants a
// person a short-lived user and an SSH certificate on a set of hosts, moves
// the end of that window, changes the hosts, revokes it all, and checks that
// a grant still stands. The Terraform provider and the reconciler both call
// it, so a revoke is one code path whoever triggers it.
//
// A Service does not remember grants; the caller keeps the *Grant (in
// Terraform state, later in the ledger) and hands it back. Every host is
// reached through one fleet fan-out per operation, so a request to 200 hosts
// costs about as much as one to a single host.
//
// Usernames are never reused, and until the ledger lands that rests on two
// things. First, a name is the prefix and at least 10 characters drawn from
// crypto/rand (50 bits or more): a name that ever existed comes back by
// chance about once in 10^15 draws, far less often than a host is rebuilt.
// Second, the host is asked: provision refuses a name that exists there
// (hostscript.ExitConflict), and Grant then undoes what it did under that
// name and tries once more under a new one. Once the ledger records every
// name issued, it becomes the authority and the retry a last line of
// defence.
//
// Errors are written for the person who asked: they name each host or field
// and say what to do, and never carry a private key or a certificate.
package access

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/documents"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// MaxDuration is the hard cap on an access window, whatever policy says.
const MaxDuration = sshca.MaxWindow

// Defaults for Request and Config fields left empty.
const (
	DefaultDuration       = time.Hour
	DefaultUsernamePrefix = "pp-"
	DefaultTimeout        = 5 * time.Minute
	// MaxTargets bounds one request; larger fleets are several requests.
	MaxTargets = 200
)

// Config wires the core to the world.
type Config struct {
	Fleet *fleet.Runner
	// Now is the clock; tests move a fake one. time.Now when nil.
	Now func() time.Time
	// UsernamePrefix starts every short-lived user's name, so operators
	// recognise Passport users at a glance. Default "pp-";
	// [a-z][a-z0-9-]{0,9}.
	UsernamePrefix string
	// Timeout bounds one fan-out (provision, extend, revoke or check of all
	// targets). Default 5m. A Grant makes several in turn (inventory,
	// provision, and an undo when a target fails; provision and undo again
	// after a name conflict). The undo runs even after the caller's context
	// has ended, within its own Timeout.
	Timeout time.Duration
	// Ledger records every grant before any host is touched, each host's
	// outcome after, and an audit event per step. Nil records nothing
	// (tests of the hosts alone); the provider and the reconciler always
	// give one.
	Ledger *ledger.Ledger
	// SealedOnly makes the Service refuse Windows targets whose request
	// brings no SealTo key: the Passport service never reads a password.
	SealedOnly bool
	// Authorizer, when set, is asked before anything touches a host or the
	// ledger: by Grant about every target, by Extend about the active
	// targets when the window grows, by SetTargets about added targets. Its
	// refusal is returned and changes nothing. Nil allows everything
	// (tests of the hosts alone); the provider always gives one.
	Authorizer Authorizer
	// Documents, when set, sends every host program through Passport's
	// own SSM documents, by name, version and SHA-256 (documents.Publish
	// or documents.Lookup gives them), so the caller's role needs
	// ssm:SendCommand on those documents only and never on
	// AWS-RunShellScript. Nil sends the programs as scripts through
	// AWS-RunShellScript and AWS-RunPowerShellScript (direct mode).
	Documents *documents.Set
	// Approvals, when set, lets requests that policy grants only with
	// approval wait for it (Approve, Deny, EndWaiting). Nil refuses them:
	// only the Passport service sets it, since anywhere else the
	// requester could go around the approvers.
	Approvals *Approvals
	// Recordings, when set, collects session recordings into its bucket:
	// from each host a grant is revoked on, from hosts stray users are
	// removed from, and whenever CollectRecordings is called. Nil collects
	// nothing (the recordings wait on the hosts).
	Recordings *Recordings
}

// Service grants and revokes access. It is safe for concurrent use.
type Service struct {
	fleet   *fleet.Runner
	now     func() time.Time
	prefix  string
	timeout time.Duration
	ledger  *ledger.Ledger
	authz   Authorizer
	docs    *documents.Set
	// approvals: see Config.Approvals.
	approvals *Approvals
	// sealedOnly: see Config.SealedOnly.
	sealedOnly bool
	// recordings: see Config.Recordings.
	recordings *Recordings
	// actor is who the audit events of one call name; see as.
	actor string
}

var rePrefix = regexp.MustCompile(`^[a-z][a-z0-9-]{0,9}$`)

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Fleet == nil {
		return nil, errors.New("access: Config.Fleet is nil: give a fleet.Runner")
	}
	s := &Service{fleet: cfg.Fleet, now: cfg.Now, prefix: cfg.UsernamePrefix, timeout: cfg.Timeout, ledger: cfg.Ledger, authz: cfg.Authorizer, docs: cfg.Documents, sealedOnly: cfg.SealedOnly, approvals: cfg.Approvals, recordings: cfg.Recordings}
	if s.now == nil {
		s.now = time.Now
	}
	if s.prefix == "" {
		s.prefix = DefaultUsernamePrefix
	}
	if !rePrefix.MatchString(s.prefix) {
		return nil, fmt.Errorf("username_prefix %q is invalid: use 1-10 characters of a-z, 0-9 and '-', starting with a letter", printable(s.prefix, 40))
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	return s, nil
}

// Request is what a person asks for.
type Request struct {
	// ID, when set, is the grant's id (NewGrantID's form), picked by a
	// caller that must be able to ask again without granting twice: the
	// ledger records an id once. Empty means a fresh one.
	ID string
	// Reason says why, for the audit trail: 10-256 printable characters.
	Reason string
	// Targets are instance ids: 1 to MaxTargets, each once.
	Targets []string
	// Duration is the window's length: DefaultDuration when zero, at most
	// MaxDuration.
	Duration time.Duration
	// CA signs the certificate.
	CA *sshca.CA
	// PublicKey is the requester's authorized_keys line. Empty means
	// Passport generates an ed25519 key pair and returns the private key;
	// giving one is better, since the private key then never leaves the
	// requester.
	PublicKey string
	// Sudo grants passwordless sudo on every target.
	Sudo bool
	// Requester is who asks: the SAML subject, or the AWS principal ARN
	// without SAML. It goes into the certificate's key id, which sshd logs,
	// and the host's grant record.
	Requester string
	// RequesterKind is what Requester is, for policy: a person (the
	// default) or a machine the service knows by its AWS identity.
	RequesterKind policy.Kind
	// Groups are the requester's groups in the identity store, as policy
	// saw them; the ledger keeps them so that a reconciler can ask policy
	// again about the same person.
	Groups []string
	// BreakGlass asks for access at once where policy otherwise wants
	// approval, for those policy lets break the glass: the grant is
	// announced urgently and must be reviewed afterwards by someone else.
	// Only the Passport service (Config.Approvals) takes it.
	BreakGlass bool
	// SealTo, when set, is the requester's own key for Windows passwords:
	// each Windows host seals its password to it, and the Grant carries
	// the sealed form in SealedPasswords instead of opening it. The
	// Passport service sets it, so that only the client that made the key
	// can read a password. Nil: Passport makes a one-off key and opens the
	// passwords itself (direct mode).
	SealTo *rsa.PublicKey
}

// TargetStatus is where one target of a grant stands.
type TargetStatus string

// Target statuses.
const (
	// Active: the user is on the host, or may still be (a revoke or an undo
	// that could not reach it). Revoke acts on Active targets only.
	Active TargetStatus = "active"
	// Failed: provisioning failed and the host holds nothing of this grant
	// (it was undone, or never changed).
	Failed TargetStatus = "failed"
	// Revoked: the user is gone and the certificate is in the host's KRL.
	Revoked TargetStatus = "revoked"
)

// Target is one host of a grant.
type Target struct {
	InstanceID string
	// Platform is the node's platform as SSM reports it: Linux or Windows.
	// Empty means Linux (grants recorded before Windows targets existed).
	Platform string
	Status   TargetStatus
	// Address is the host's IP address as SSM reports it.
	Address string
	// Detail says in plain words what happened when Status is not Active.
	Detail string
	// Failures counts the revokes in a row that did not reach the target;
	// the ledger keeps it, and a reconciler's retries wait longer as it
	// grows.
	Failures int
}

// Grant is access given: one user on each target, one certificate.
type Grant struct {
	// ID is "ar-" and 16 random hex digits.
	ID string
	// Username is the short-lived user, the same on every target.
	Username      string
	Requester     string
	RequesterKind policy.Kind
	// Groups are the requester's groups when the grant was made.
	Groups  []string
	Reason  string
	Sudo    bool
	Targets []Target
	// IssuedAt and ExpiresAt are the window. The certificate is back-dated
	// by sshca.ClockSkew before IssuedAt.
	IssuedAt, ExpiresAt time.Time
	// PublicKey is the user key the certificate is for (authorized_keys form).
	PublicKey string
	// PrivateKey is the OpenSSH PEM private key, only when Passport generated
	// the key pair. It is a secret.
	PrivateKey string
	// Passwords are the generated passwords of the Windows targets this
	// process provisioned, by instance id. They are secrets: the ledger
	// never holds them, and a grant rebuilt from a record has none.
	Passwords map[string]string
	// SealTo and SealedPasswords: see Request.SealTo. SealTo applies to
	// hosts this Grant provisions (SetTargets too); SealedPasswords are
	// the passwords those hosts sealed to it, by instance id, in the form
	// hostscript.OpenSealedPassword opens.
	SealTo          *rsa.PublicKey
	SealedPasswords map[string]string
	// Certificate is the certificate in authorized_keys form.
	Certificate string
	// Serial is the certificate's serial, which revoke adds to each host's KRL.
	Serial uint64
	// CAPublicKey is the signing CA's public key (authorized_keys form).
	CAPublicKey string
	// Approval is what the request waits, or waited, for when policy
	// wanted approval (the Passport service only); nil when it was granted
	// at once. Extension is a longer window that waits for approval while
	// the current one stands.
	Approval  *ledger.Approval
	Extension *ledger.Extension
	// BreakGlass marks a grant given at once because its requester broke
	// the glass; Review is the review someone else owes it.
	BreakGlass bool
	Review     *ledger.Review
	// Why is the reason for the next change to the grant where its record
	// does not say it (the reconciler's policy reason, an approver's
	// denial of a longer window): the ledger puts it on the notice the
	// change makes. Not stored.
	Why string
	// clearExtension says the next record drops the stored Extension
	// (it was decided), where a nil Extension otherwise keeps it: a grant
	// rebuilt from Terraform's state knows nothing of one.
	clearExtension bool
}

// Health is what Check found.
type Health struct {
	// Expired is true once the window has ended.
	Expired bool
	// Missing are targets where the user or its grant record has vanished.
	Missing []string
	// Unreachable are targets that could not be checked.
	Unreachable []string
}

// printable keeps s on one line of printable ASCII for an error message and
// cuts it to at most n bytes.
func printable(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for _, r := range s {
		if len(b) >= n {
			break
		}
		if r >= 0x20 && r < 0x7f {
			b = append(b, byte(r))
		} else {
			b = append(b, '?')
		}
	}
	return string(b)
}
