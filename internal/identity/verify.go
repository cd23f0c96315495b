package identity

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Options say what a response must match. Metadata, SPEntityID and ACSURL
// are required.
type Options struct {
	// Metadata is the IdP's metadata; its entityID is the only accepted
	// issuer and its signing certificates the only accepted keys.
	Metadata *saml.EntityDescriptor
	// SPEntityID is Passport's entity ID at the IdP: the audience.
	SPEntityID string
	// ACSURL is where the response was delivered: Destination and Recipient.
	ACSURL string
	// GroupsAttribute is the Name of the attribute that lists the person's
	// groups; DefaultGroupsAttribute when empty. Only that attribute counts:
	// a FriendlyName is a display label, and another attribute with the
	// same label says nothing about groups.
	GroupsAttribute string
	// RequestID is set at login only: the AuthnRequest the response must
	// answer. When set, the response's delivery window is checked too.
	RequestID string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// AllowedSkew tolerates clocks that disagree with the IdP's;
	// DefaultAllowedSkew when zero.
	AllowedSkew time.Duration
	// MaxSession caps a session, whatever the IdP says;
	// DefaultMaxSession when zero.
	MaxSession time.Duration
	// InsecureAllowSHA1 accepts signatures and digests made with SHA-1,
	// which is broken: only for an IdP that cannot sign with SHA-256 yet.
	InsecureAllowSHA1 bool
}

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	bearer      = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	maxDepth    = 32
)

// Verify checks a SAML response (the XML, not its base64 form) by the rules
// in the package documentation and returns what it says. Errors say which
// rule failed; the response itself is never echoed, and what they quote
// of it is escaped, so they are safe to print anywhere.
func Verify(raw []byte, opts Options) (Claims, error) {
	c, err := verify(raw, opts)
	if err != nil {
		return Claims{}, safe(fmt.Errorf("SAML response refused: %w", err))
	}
	return c, nil
}

func verify(raw []byte, opts Options) (Claims, error) {
	if opts.Metadata == nil || opts.SPEntityID == "" || opts.ACSURL == "" {
		return Claims{}, errors.New("verifier is missing the IdP metadata, SP entity ID or ACS URL")
	}
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	skew := orDefault(opts.AllowedSkew, DefaultAllowedSkew)
	if until := opts.Metadata.ValidUntil; !until.IsZero() && now.After(until) {
		return Claims{}, fmt.Errorf("the IdP metadata %q expired at %s; fetch it again", opts.Metadata.EntityID, until.Format(time.RFC3339))
	}
	certs, err := SigningCertificates(opts.Metadata)
	if err != nil {
		return Claims{}, err
	}

	root, err := parse(raw)
	if err != nil {
		return Claims{}, err
	}
	if root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return Claims{}, fmt.Errorf("the document is a %s, not a SAML Response", quote(root.Tag))
	}
	if err := checkShape(root); err != nil {
		return Claims{}, err
	}

	// Both signatures, when present, must verify. The claims come from the
	// bytes a signature covered: the assertion's own when it is signed,
	// else the assertion inside the signed Response.
	response := root
	var assertion *etree.Element
	if child(root, nsDSig, "Signature") != nil {
		if response, err = verifySignature(root, certs, now, opts.InsecureAllowSHA1); err != nil {
			return Claims{}, fmt.Errorf("the Response signature %w", err)
		}
		assertion = child(response, nsAssertion, "Assertion")
	}
	if a := child(root, nsAssertion, "Assertion"); child(a, nsDSig, "Signature") != nil {
		if assertion, err = verifySignature(a, certs, now, opts.InsecureAllowSHA1); err != nil {
			return Claims{}, fmt.Errorf("the Assertion signature %w", err)
		}
	}
	if assertion == nil {
		return Claims{}, errors.New("the assertion is not signed; the IdP must sign the assertion or the response")
	}

	if err := checkResponse(response, opts); err != nil {
		return Claims{}, err
	}
	return checkAssertion(assertion, opts, now, skew)
}

// parse reads raw as one XML document without DTDs, comments or processing
// instructions: exactly one root element, with nothing but white space
// around it. It refuses documents that would not survive a round trip
// through encoding/xml unchanged (the namespace confusion behind several
// Go SAML advisories).
func parse(raw []byte) (*etree.Element, error) {
	if len(raw) > MaxResponseSize {
		return nil, fmt.Errorf("it is %d bytes, more than the %d a response may be", len(raw), MaxResponseSize)
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	depth, roots := 0, 0
	for first := true; ; first = false {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("it is not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return nil, fmt.Errorf("it has a second element (%s) after its root element closed; a response is exactly one element", quote(t.Name.Local))
				}
			}
			if depth++; depth > maxDepth {
				return nil, fmt.Errorf("it nests elements deeper than %d", maxDepth)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				where := "before"
				if roots > 0 {
					where = "after"
				}
				return nil, fmt.Errorf("it has text %s its root element; a response is exactly one element", where)
			}
		case xml.Comment:
			return nil, errors.New("it contains an XML comment, which a genuine IdP response never does")
		case xml.Directive:
			return nil, errors.New("it contains a DTD or other directive")
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return nil, fmt.Errorf("it contains the processing instruction %s", quote(t.Target))
			}
		}
	}
	if depth != 0 {
		return nil, errors.New("it is not well-formed XML: it ends inside an element")
	}
	if roots == 0 {
		return nil, errors.New("it has no root element: it is not XML, or empty")
	}
	if err := xrv.Validate(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("it is ambiguous XML: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, fmt.Errorf("it is not well-formed XML: %v", err)
	}
	if doc.Root() == nil {
		return nil, errors.New("it has no root element: it is not XML, or empty")
	}
	return doc.Root(), nil
}

// checkShape refuses every document but the one shape Passport accepts:
// one Assertion, directly under the Response; signatures only directly
// under those two; IDs unique. Signature wrapping works by hiding a second
// copy of something somewhere a verifier does not look; here there is no
// such place.
func checkShape(root *etree.Element) error {
	var assertions, signatures, placed int
	ids := map[string]bool{}
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		if id := el.SelectAttrValue("ID", ""); id != "" {
			if ids[id] {
				return fmt.Errorf("two elements share the ID %q", id)
			}
			ids[id] = true
		}
		switch ns := el.NamespaceURI(); {
		case ns == nsAssertion && el.Tag == "EncryptedAssertion":
			return errors.New("it holds an encrypted assertion; Passport has no decryption key, configure the IdP not to encrypt")
		case ns == nsAssertion && el.Tag == "Assertion":
			assertions++
		case ns == nsDSig && el.Tag == "Signature":
			signatures++
		}
		for _, c := range el.ChildElements() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return err
	}
	if assertions != 1 {
		return fmt.Errorf("it holds %d assertions; exactly one is accepted", assertions)
	}
	a := child(root, nsAssertion, "Assertion")
	if a == nil {
		return errors.New("its assertion is not directly inside the Response")
	}
	for _, el := range []*etree.Element{root, a} {
		if n := len(children(el, nsDSig, "Signature")); n > 1 {
			return fmt.Errorf("the %s carries %d signatures", el.Tag, n)
		} else {
			placed += n
		}
	}
	if signatures != placed {
		return errors.New("it holds a signature that signs neither the Response nor the Assertion")
	}
	return nil
}

// verifySignature checks el's enveloped signature against each trusted
// certificate and returns the element as the signature covered it.
func verifySignature(el *etree.Element, certs []*x509.Certificate, now time.Time, allowSHA1 bool) (*etree.Element, error) {
	el, err := detach(el)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", err)
	}
	id := el.SelectAttrValue("ID", "")
	if id == "" {
		return nil, fmt.Errorf("is on a %s without an ID", el.Tag)
	}
	sig := child(el, nsDSig, "Signature")
	var refs []*etree.Element
	if si := child(sig, nsDSig, "SignedInfo"); si != nil {
		refs = children(si, nsDSig, "Reference")
	}
	if len(refs) != 1 {
		return nil, fmt.Errorf("has %d references; exactly one, to the %s, is accepted", len(refs), el.Tag)
	}
	if uri := refs[0].SelectAttrValue("URI", ""); uri != "#"+id {
		return nil, fmt.Errorf("covers %s, not the %s it is on (#%s)", quote(uri), el.Tag, quote(id))
	}
	if err := checkAlgorithms(sig, refs[0], allowSHA1); err != nil {
		return nil, err
	}
	// The metadata's certificates decide, never the signature's KeyInfo;
	// but a KeyInfo naming another certificate says why a signature fails.
	if ki := child(sig, nsDSig, "KeyInfo"); ki != nil {
		if err := knownCertificate(ki, certs); err != nil {
			return nil, err
		}
		sig.RemoveChild(ki)
	}
	var current []*x509.Certificate
	for _, cert := range certs {
		if !now.Before(cert.NotBefore) && !now.After(cert.NotAfter) {
			current = append(current, cert)
		}
	}
	if len(current) == 0 {
		return nil, fmt.Errorf("cannot be checked: no signing certificate in the IdP metadata is valid now (the first was valid from %s to %s); fetch the IdP's current metadata",
			certs[0].NotBefore.UTC().Format(time.RFC3339), certs[0].NotAfter.UTC().Format(time.RFC3339))
	}
	for _, cert := range current {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.IdAttribute = "ID"
		vc.Clock = dsig.NewFakeClockAt(now)
		if verified, err := vc.Validate(el); err == nil {
			return verified, nil
		}
	}
	return nil, errors.New("does not verify: the response was changed after the IdP signed it, or a key other than those in the IdP metadata signed it")
}

// detach copies el out of its document with every namespace in scope at
// el declared on the copy, so that it means the same standing alone.
// goxmldsig's own NSDetatch refuses elements with more than 1000
// descendants, which a genuine response listing many groups has; the
// document's size and depth are bounded by parse instead.
func detach(el *etree.Element) (*etree.Element, error) {
	var chain []*etree.Element
	for p := el.Parent(); p != nil; p = p.Parent() {
		chain = append(chain, p)
	}
	ctx := etreeutils.EmptyNSContext // no traversal limit
	for i := len(chain) - 1; i >= 0; i-- {
		var err error
		if ctx, err = ctx.SubContext(chain[i]); err != nil {
			return nil, err
		}
	}
	return etreeutils.NSDetatch(ctx, el)
}

// knownCertificate refuses a KeyInfo whose certificate is not one of the
// metadata's, in words that point at the likely cause.
func knownCertificate(ki *etree.Element, certs []*x509.Certificate) error {
	given := ki.FindElements(".//X509Certificate")
	if len(given) == 0 {
		return nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(given[0].Text()), ""))
	if err != nil {
		return errors.New("names a signing certificate that is not base64")
	}
	for _, c := range certs {
		if bytes.Equal(c.Raw, der) {
			return nil
		}
	}
	return errors.New("was made with a certificate that is not in the IdP metadata; if the IdP has a new signing certificate, fetch its metadata again")
}

// checkResponse checks the Response envelope. When the Response is
// unsigned these values are unauthenticated, so they are only compared
// against what Passport expects, never trusted for anything else.
func checkResponse(r *etree.Element, opts Options) error {
	var resp struct {
		InResponseTo string `xml:",attr"`
		Destination  string `xml:",attr"`
		Issuer       string `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
		Status       struct {
			StatusCode struct {
				Value string `xml:",attr"`
			} `xml:"urn:oasis:names:tc:SAML:2.0:protocol StatusCode"`
		} `xml:"urn:oasis:names:tc:SAML:2.0:protocol Status"`
	}
	if err := unmarshal(r, &resp); err != nil {
		return err
	}
	if code := resp.Status.StatusCode.Value; code != saml.StatusSuccess {
		return fmt.Errorf("the IdP did not sign you in (status %s)", quote(code))
	}
	if resp.Destination != "" && resp.Destination != opts.ACSURL {
		return fmt.Errorf("its Destination %s is not this login's ACS %s", quote(resp.Destination), quote(opts.ACSURL))
	}
	if resp.Issuer != "" && resp.Issuer != opts.Metadata.EntityID {
		return fmt.Errorf("its issuer %s is not the IdP in the metadata (%s)", quote(resp.Issuer), quote(opts.Metadata.EntityID))
	}
	if opts.RequestID != "" && resp.InResponseTo != opts.RequestID {
		return fmt.Errorf("it answers request %s, not this login's request", quote(resp.InResponseTo))
	}
	return nil
}

func checkAssertion(el *etree.Element, opts Options, now time.Time, skew time.Duration) (Claims, error) {
	var a saml.Assertion
	if err := unmarshal(el, &a); err != nil {
		return Claims{}, err
	}
	if a.Issuer.Value != opts.Metadata.EntityID {
		return Claims{}, fmt.Errorf("the assertion's issuer %s is not the IdP in the metadata (%s)", quote(a.Issuer.Value), quote(opts.Metadata.EntityID))
	}
	if a.Subject == nil || a.Subject.NameID == nil || strings.TrimSpace(a.Subject.NameID.Value) == "" {
		return Claims{}, errors.New("the assertion names no subject (NameID)")
	}
	if a.IssueInstant.IsZero() {
		return Claims{}, errors.New("the assertion does not say when it was issued (IssueInstant)")
	}
	if a.IssueInstant.After(now.Add(skew)) {
		return Claims{}, fmt.Errorf("the assertion says it was issued at %s, %s in the future: this computer's clock or the IdP's is wrong",
			a.IssueInstant.UTC().Format(time.RFC3339), a.IssueInstant.Sub(now).Round(time.Second))
	}
	if err := checkAudience(el, opts.SPEntityID); err != nil {
		return Claims{}, err
	}
	cond := a.Conditions
	if !cond.NotBefore.IsZero() && now.Add(skew).Before(cond.NotBefore) {
		return Claims{}, fmt.Errorf("the assertion is not valid until %s, %s from now: this computer's clock or the IdP's is wrong",
			cond.NotBefore.UTC().Format(time.RFC3339), cond.NotBefore.Sub(now).Round(time.Second))
	}
	if opts.RequestID != "" {
		if err := delivered("its Conditions", cond.NotOnOrAfter, now, skew); err != nil {
			return Claims{}, err
		}
	}

	var confirmed bool
	var inResponseTo string
	for _, sc := range a.Subject.SubjectConfirmations {
		if sc.Method != bearer {
			continue
		}
		d := sc.SubjectConfirmationData
		if d == nil || d.Recipient != opts.ACSURL {
			return Claims{}, fmt.Errorf("the assertion's Recipient is not this login's ACS %s", quote(opts.ACSURL))
		}
		if opts.RequestID != "" {
			if d.InResponseTo != opts.RequestID {
				return Claims{}, fmt.Errorf("the assertion answers request %s, not this login's request", quote(d.InResponseTo))
			}
			if err := delivered("its SubjectConfirmationData", d.NotOnOrAfter, now, skew); err != nil {
				return Claims{}, err
			}
		}
		confirmed, inResponseTo = true, d.InResponseTo
	}
	if !confirmed {
		return Claims{}, errors.New("the assertion has no bearer SubjectConfirmation")
	}
	if len(a.AuthnStatements) == 0 {
		return Claims{}, errors.New("the assertion has no AuthnStatement")
	}

	expires := a.IssueInstant.Add(orDefault(opts.MaxSession, DefaultMaxSession))
	if end := a.AuthnStatements[0].SessionNotOnOrAfter; end != nil && end.Before(expires) {
		expires = *end
	}
	if !now.Before(expires) {
		return Claims{}, fmt.Errorf("the session ended at %s: %w", expires.Format(time.RFC3339), ErrExpired)
	}
	return Claims{
		Subject:      strings.TrimSpace(a.Subject.NameID.Value),
		Groups:       groups(a, orDefaultString(opts.GroupsAttribute, DefaultGroupsAttribute)),
		Issuer:       a.Issuer.Value,
		IssuedAt:     a.IssueInstant,
		Expires:      expires,
		InResponseTo: inResponseTo,
		AssertionID:  a.ID,
	}, nil
}

// delivered checks the delivery deadline a login's response carries: a
// strict IdP always sets one, a few minutes after it signed.
func delivered(where string, deadline, now time.Time, skew time.Duration) error {
	if deadline.IsZero() {
		return fmt.Errorf("the assertion sets no delivery deadline in %s (NotOnOrAfter), which a strict IdP always does", where)
	}
	if !now.Before(deadline.Add(skew)) {
		return &lateError{deadline: deadline, now: now}
	}
	return nil
}

// lateError is a response that reached Passport after its delivery
// deadline: sign in again, as after an expired session (it matches
// ErrExpired), though nothing has expired but the response.
type lateError struct{ deadline, now time.Time }

func (e *lateError) Error() string {
	return fmt.Sprintf("the response arrived %s after its delivery deadline (%s); sign in again, and if this keeps happening check this computer's clock",
		e.now.Sub(e.deadline).Round(time.Second), e.deadline.UTC().Format(time.RFC3339))
}

func (e *lateError) Is(target error) bool { return target == ErrExpired }

// checkAudience reads the audiences from the element because an
// AudienceRestriction may list several, and every restriction present must
// include Passport.
func checkAudience(assertion *etree.Element, sp string) error {
	restrictions := assertion.FindElements("./Conditions/AudienceRestriction")
	if len(restrictions) == 0 {
		return errors.New("the assertion has no AudienceRestriction; it could be meant for any service")
	}
	for _, r := range restrictions {
		var found []string
		for _, aud := range r.SelectElements("Audience") {
			found = append(found, strings.TrimSpace(aud.Text()))
		}
		if !contains(found, sp) {
			quoted := make([]string, len(found))
			for i, f := range found {
				quoted[i] = quote(f)
			}
			return fmt.Errorf("the assertion is for the audience [%s], not %s", strings.Join(quoted, " "), quote(sp))
		}
	}
	return nil
}

func groups(a saml.Assertion, name string) []string {
	var out []string
	for _, st := range a.AttributeStatements {
		for _, attr := range st.Attributes {
			if attr.Name != name {
				continue
			}
			for _, v := range attr.Values {
				if g := strings.TrimSpace(v.Value); g != "" && !contains(out, g) {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// SigningCertificates returns the certificates the IdP metadata lists for
// signing (use="signing" or no use).
func SigningCertificates(md *saml.EntityDescriptor) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return nil, fmt.Errorf("IdP metadata %q: a signing certificate is not base64: %v", md.EntityID, err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fmt.Errorf("IdP metadata %q: a signing certificate does not parse: %v", md.EntityID, err)
				}
				certs = append(certs, cert)
			}
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("IdP metadata %q lists no signing certificate", md.EntityID)
	}
	return certs, nil
}

func unmarshal(el *etree.Element, v any) error {
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	buf, err := doc.WriteToBytes()
	if err != nil {
		return err
	}
	if err := xml.Unmarshal(buf, v); err != nil {
		return fmt.Errorf("its %s does not parse: %v", el.Tag, err)
	}
	return nil
}

func child(el *etree.Element, ns, tag string) *etree.Element {
	if el == nil {
		return nil
	}
	if c := children(el, ns, tag); len(c) > 0 {
		return c[0]
	}
	return nil
}

func children(el *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orDefaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
