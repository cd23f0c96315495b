// Package identity turns a SAML 2.0 response from the organisation's
// identity provider into a person Passport can authorize: a subject, the
// groups the IdP vouches for, and how long that is true.
//
// `passport login` runs the SP-initiated flow (Login) and stores the signed
// response it received (Session); the provider and every other consumer
// verify that stored response again with Verify on each use, so a session
// file that was edited, copied to another SP, or has expired is refused at
// the moment it matters.
//
// The rules Verify applies:
//
//   - The IdP metadata has not passed its validUntil.
//   - The document is at most MaxResponseSize bytes of well-formed XML with
//     no DTD, comments or processing instructions, and exactly one root
//     element with nothing but white space around it (an assertion appended
//     after </samlp:Response> is refused, not ignored). Real IdPs never send
//     such things, and comments are the lever of the NameID truncation
//     attacks.
//   - The root is a samlp:Response with status Success. It holds exactly one
//     saml:Assertion (anywhere in the document) and no EncryptedAssertion.
//   - Signatures use exclusive canonicalization, the enveloped-signature
//     transform, and RSA or ECDSA with SHA-256, SHA-384 or SHA-512 for the
//     signature and the digest. SHA-1 is refused unless
//     Options.InsecureAllowSHA1 is set.
//   - The assertion is covered by a valid signature from a signing
//     certificate in the IdP metadata: its own, or the Response's. Every
//     Signature present must be valid. A signature must have exactly one
//     Reference, and it must name the signed element's own ID. Claims are
//     read only from the bytes the signature covered, never from the
//     document around them.
//   - Issuer is the metadata's entityID, the audience includes the SP entity
//     ID, the bearer SubjectConfirmation's Recipient and the Response's
//     Destination are the ACS URL, and Conditions NotBefore has passed
//     (less AllowedSkew).
//   - At login (Options.RequestID set) also: InResponseTo on the Response
//     and on the SubjectConfirmationData is that request, and the delivery
//     window (Conditions NotOnOrAfter, SubjectConfirmationData NotOnOrAfter)
//     has not passed. Login consumes the request ID, so a response is
//     accepted at most once.
//   - On every use: the session has not expired. A session ends at the
//     AuthnStatement's SessionNotOnOrAfter when the IdP sets one, and never
//     later than MaxSession after the assertion was issued.
//
// Groups come from the one attribute whose Name is Options.GroupsAttribute.
// Errors quote what the response says only escaped (no control or
// invisible characters reach a terminal) and cut short.
//
// IdP metadata (LoadMetadata) comes from a file or over https; plain http
// only from a loopback address, no redirect from https to anything else,
// and every fetch ends after MetadataTimeout.
//
// A stored response is a bearer credential until it expires, like any cached
// sign-in: it lives in a file only its owner can read.
package identity

import (
	"errors"
	"time"
)

// Claims are what a verified response says about a person.
type Claims struct {
	Subject string   // the NameID
	Groups  []string // values of the groups attribute, in the IdP's order
	Issuer  string   // the IdP's entity ID
	// IssuedAt is the assertion's IssueInstant; Expires is when the session
	// ends by the rules in the package documentation.
	IssuedAt time.Time
	Expires  time.Time
	// InResponseTo is the AuthnRequest ID the response answers.
	InResponseTo string
	// AssertionID is the signed assertion's ID, for audit records.
	AssertionID string
}

// Defaults for Options fields left zero.
const (
	DefaultGroupsAttribute = "groups"
	DefaultAllowedSkew     = 2 * time.Minute
	DefaultMaxSession      = 12 * time.Hour
	// MaxResponseSize bounds the XML Verify reads. A response with a
	// certificate and a few dozen groups is a few kilobytes; one listing
	// the 2,000 groups of a person in a large directory, about 300.
	MaxResponseSize = 1 << 20
)

// ErrExpired is wrapped by errors about a session whose time is over, so a
// caller can tell the person to sign in again.
var ErrExpired = errors.New("the SAML session has expired; run passport login")
