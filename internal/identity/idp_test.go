package identity

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// A testIdP signs responses the way a real IdP does, so the bad-input
// suite can start from a response Verify accepts and change one thing.
type testIdP struct {
	entityID string
	key      *rsa.PrivateKey
	cert     *x509.Certificate
}

const (
	testIdPEntity = "https://idp.example.test/metadata"
	testSP        = "passport"
	testACS       = "http://127.0.0.1:4711/saml/acs"
	testRequest   = "id-request-1"
)

// testNow is the instant test responses are issued at.
var testNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// Keys are slow to generate; tests share two.
var testKeys = map[string]*testIdP{}

func newTestIdP(t testing.TB, name string) *testIdP {
	t.Helper()
	if p := testKeys[name]; p != nil {
		return p
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    testNow.AddDate(-1, 0, 0),
		NotAfter:     testNow.AddDate(5, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testIdP{entityID: testIdPEntity, key: key, cert: cert}
	testKeys[name] = p
	return p
}

func (p *testIdP) metadata() *saml.EntityDescriptor {
	return &saml.EntityDescriptor{
		EntityID: p.entityID,
		IDPSSODescriptors: []saml.IDPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{
				KeyDescriptors: []saml.KeyDescriptor{{
					Use: "signing",
					KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
						{Data: base64.StdEncoding.EncodeToString(p.cert.Raw)},
					}}},
				}},
			}},
			SingleSignOnServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: "https://idp.example.test/sso"}},
		}},
	}
}

func testOptions(md *saml.EntityDescriptor) Options {
	return Options{
		Metadata:   md,
		SPEntityID: testSP,
		ACSURL:     testACS,
		RequestID:  testRequest,
		Now:        func() time.Time { return testNow.Add(10 * time.Second) },
	}
}

// spec is one response's content; goodSpec is a response Verify accepts.
type spec struct {
	subject, issuer, audience, recipient, destination, inResponseTo string
	groups                                                          []string
	issued, notBefore, notOnOrAfter                                 time.Time
	sessionEnd                                                      *time.Time
	signAssertion, signResponse                                     bool
	// signatureMethod is how the IdP signs; RSA-SHA256 when empty.
	signatureMethod string
	// groupsName and groupsFriendlyName name the groups attribute;
	// "groups" and none when empty.
	groupsName, groupsFriendlyName string
}

func goodSpec() spec {
	end := testNow.Add(8 * time.Hour)
	return spec{
		subject: "alice@example.test", issuer: testIdPEntity, audience: testSP,
		recipient: testACS, destination: testACS, inResponseTo: testRequest,
		groups: []string{"ops", "staff"},
		issued: testNow, notBefore: testNow.Add(-time.Minute), notOnOrAfter: testNow.Add(90 * time.Second),
		sessionEnd:    &end,
		signAssertion: true,
	}
}

func (p *testIdP) assertion(t testing.TB, s spec) *etree.Element {
	t.Helper()
	var values []saml.AttributeValue
	for _, g := range s.groups {
		values = append(values, saml.AttributeValue{Type: "xs:string", Value: g})
	}
	a := &saml.Assertion{
		ID:           "id-assertion-1",
		IssueInstant: s.issued,
		Version:      "2.0",
		Issuer:       saml.Issuer{Value: s.issuer},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified", Value: s.subject},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: bearer,
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: s.inResponseTo, NotOnOrAfter: s.notOnOrAfter, Recipient: s.recipient,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore: s.notBefore, NotOnOrAfter: s.notOnOrAfter,
			AudienceRestrictions: []saml.AudienceRestriction{{Audience: saml.Audience{Value: s.audience}}},
		},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant: s.issued, SessionIndex: "session-1", SessionNotOnOrAfter: s.sessionEnd,
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}},
		}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{{
			Name: "groups", NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", Values: values,
		}}}},
	}
	if s.groupsName != "" {
		a.AttributeStatements[0].Attributes[0].Name = s.groupsName
	}
	a.AttributeStatements[0].Attributes[0].FriendlyName = s.groupsFriendlyName
	el := a.Element()
	if s.signAssertion {
		el = p.sign(t, el, s.signatureMethod)
	}
	return el
}

// response builds the response for s as the bytes an ACS would receive.
func (p *testIdP) response(t testing.TB, s spec) []byte {
	t.Helper()
	return p.wrap(t, s, p.assertion(t, s))
}

// wrap puts an assertion (possibly tampered with) into a Response.
func (p *testIdP) wrap(t testing.TB, s spec, assertion *etree.Element) []byte {
	t.Helper()
	r := &saml.Response{
		ID: "id-response-1", InResponseTo: s.inResponseTo, Version: "2.0", IssueInstant: s.issued,
		Destination: s.destination,
		Issuer:      &saml.Issuer{Value: s.issuer},
		Status:      saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
	el := r.Element()
	el.AddChild(assertion)
	if s.signResponse {
		el = p.sign(t, el, s.signatureMethod)
	}
	return serialize(t, el)
}

// sign signs el the way IdPs do: enveloped, exclusive c14n, RSA-SHA256
// unless method says otherwise, the Signature placed right after the
// Issuer.
func (p *testIdP) sign(t testing.TB, el *etree.Element, method string) *etree.Element {
	t.Helper()
	if method == "" {
		method = dsig.RSASHA256SignatureMethod
	}
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{p.cert.Raw}, PrivateKey: p.key}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(method); err != nil {
		t.Fatal(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	// The signed copy's Signature does not know its parent, so it is
	// moved by hand.
	sig := signed.ChildElements()[len(signed.ChildElements())-1].Copy()
	signed.Child = signed.Child[:len(signed.Child)-1]
	signed.InsertChildAt(1, sig)
	return signed
}

func serialize(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseDoc(t testing.TB, raw []byte) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}
