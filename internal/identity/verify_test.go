package identity

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

func TestVerifyAcceptsSignedResponses(t *testing.T) {
	p := newTestIdP(t, "idp")
	for _, tc := range []struct {
		name                        string
		signAssertion, signResponse bool
	}{
		{"assertion signed", true, false},
		{"response signed", false, true},
		{"both signed", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := goodSpec()
			s.signAssertion, s.signResponse = tc.signAssertion, tc.signResponse
			c, err := Verify(p.response(t, s), testOptions(p.metadata()))
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "alice@example.test" || !slices.Equal(c.Groups, []string{"ops", "staff"}) {
				t.Errorf("claims = %+v", c)
			}
			if !c.Expires.Equal(*s.sessionEnd) || c.InResponseTo != testRequest || c.Issuer != testIdPEntity {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

// At reuse the delivery window has long passed; only the session's end
// counts, and it is capped by MaxSession.
func TestVerifyReuseUntilSessionEnds(t *testing.T) {
	p := newTestIdP(t, "idp")
	raw := p.response(t, goodSpec())
	opts := testOptions(p.metadata())
	opts.RequestID = ""
	at := func(d time.Duration) Options {
		o := opts
		o.Now = func() time.Time { return testNow.Add(d) }
		return o
	}
	if _, err := Verify(raw, at(7*time.Hour)); err != nil {
		t.Fatalf("7h into an 8h session: %v", err)
	}
	if _, err := Verify(raw, at(8*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("at the session's end: err = %v, want ErrExpired", err)
	}
	capped := at(2 * time.Hour)
	capped.MaxSession = time.Hour
	if _, err := Verify(raw, capped); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "run passport login") {
		t.Fatalf("beyond MaxSession: err = %v", err)
	}
	// The same response is refused at login once its delivery window closed.
	late := at(10 * time.Minute)
	late.RequestID = testRequest
	if _, err := Verify(raw, late); !errors.Is(err, ErrExpired) {
		t.Fatalf("delivered late: err = %v", err)
	}
}

// badCase builds a response Verify must refuse.
type badCase struct {
	name string
	raw  func(t testing.TB, p *testIdP) []byte
	opts func(o *Options)
	want string
}

func withSpec(change func(s *spec)) func(t testing.TB, p *testIdP) []byte {
	return func(t testing.TB, p *testIdP) []byte {
		s := goodSpec()
		change(&s)
		return p.response(t, s)
	}
}

// tampered starts from a good response (assertion signed unless response
// says otherwise) and lets change edit the parsed document.
func tampered(signResponse bool, change func(t testing.TB, p *testIdP, root *etree.Element)) func(t testing.TB, p *testIdP) []byte {
	return func(t testing.TB, p *testIdP) []byte {
		s := goodSpec()
		s.signResponse = signResponse
		s.signAssertion = !signResponse
		root := parseDoc(t, p.response(t, s))
		change(t, p, root)
		return serialize(t, root)
	}
}

// evil is an unsigned assertion that says what an attacker would like.
func evil(t testing.TB, p *testIdP, id string) *etree.Element {
	s := goodSpec()
	s.subject, s.groups, s.signAssertion = "mallory@example.test", []string{"admins"}, false
	el := p.assertion(t, s)
	el.CreateAttr("ID", id)
	return el
}

func assertionOf(root *etree.Element) *etree.Element { return child(root, nsAssertion, "Assertion") }

func badCases() []badCase {
	textEdit := func(old, new string) func(t testing.TB, p *testIdP) []byte {
		return func(t testing.TB, p *testIdP) []byte {
			raw := p.response(t, goodSpec())
			if !bytes.Contains(raw, []byte(old)) {
				t.Fatalf("response has no %q", old)
			}
			return bytes.Replace(raw, []byte(old), []byte(new), 1)
		}
	}
	return []badCase{
		{name: "unsigned", raw: withSpec(func(s *spec) { s.signAssertion = false }), want: "not signed"},
		{name: "signed by another key", raw: func(t testing.TB, _ *testIdP) []byte {
			return newTestIdP(t, "other").response(t, goodSpec())
		}, want: "not in the IdP metadata"},
		{name: "signed by another key, no KeyInfo", raw: func(t testing.TB, _ *testIdP) []byte {
			root := parseDoc(t, newTestIdP(t, "other").response(t, goodSpec()))
			sig := assertionOf(root).SelectElement("Signature")
			sig.RemoveChild(sig.SelectElement("KeyInfo"))
			return serialize(t, root)
		}, want: "does not verify"},
		{name: "expired delivery window", raw: withSpec(func(s *spec) {}), opts: func(o *Options) {
			o.Now = func() time.Time { return testNow.Add(10 * time.Minute) }
		}, want: "8m30s after its delivery deadline"},
		{name: "no delivery deadline", raw: withSpec(func(s *spec) { s.notOnOrAfter = time.Time{} }), want: "sets no delivery deadline"},
		{name: "expired session", raw: withSpec(func(s *spec) {}), opts: func(o *Options) {
			o.RequestID = ""
			o.Now = func() time.Time { return testNow.Add(9 * time.Hour) }
		}, want: "session ended"},
		{name: "expired metadata", raw: withSpec(func(s *spec) {}), opts: func(o *Options) {
			md := *o.Metadata
			md.ValidUntil = testNow.Add(-time.Hour)
			o.Metadata = &md
		}, want: "metadata \"https://idp.example.test/metadata\" expired"},
		{name: "not yet valid", raw: withSpec(func(s *spec) {
			s.notBefore, s.notOnOrAfter = testNow.Add(time.Hour), testNow.Add(2*time.Hour)
		}), want: "not valid until"},
		{name: "issued in the future", raw: withSpec(func(s *spec) { s.issued = testNow.Add(time.Hour) }), want: "in the future"},
		{name: "wrong audience", raw: withSpec(func(s *spec) { s.audience = "another-app" }), want: "audience"},
		{name: "wrong destination", raw: withSpec(func(s *spec) {
			s.destination, s.signResponse, s.signAssertion = "http://127.0.0.1:1/saml/acs", true, false
		}), want: "Destination"},
		{name: "wrong recipient", raw: withSpec(func(s *spec) { s.recipient = "http://127.0.0.1:1/saml/acs" }), want: "Recipient"},
		{name: "unknown InResponseTo", raw: withSpec(func(s *spec) { s.inResponseTo = "id-someone-else" }), want: "answers request"},
		{name: "IdP-initiated (no InResponseTo)", raw: withSpec(func(s *spec) { s.inResponseTo = "" }), want: "answers request"},
		{name: "wrong issuer", raw: withSpec(func(s *spec) { s.issuer = "https://evil.example.test" }), want: "issuer"},
		{name: "failed status", raw: textEdit(`urn:oasis:names:tc:SAML:2.0:status:Success`, `urn:oasis:names:tc:SAML:2.0:status:Requester`), want: "did not sign you in"},
		{name: "comment inside the NameID", raw: textEdit(`alice@example.test`, `alice@example.test<!---->.evil.test`), want: "comment"},
		{name: "comment splitting the NameID", raw: textEdit(`alice@example.test`, `alice<!-- -->@example.test`), want: "comment"},
		{name: "DTD", raw: func(t testing.TB, p *testIdP) []byte {
			return append([]byte(`<!DOCTYPE r [<!ENTITY a "aaaa">]>`), p.response(t, goodSpec())...)
		}, want: "DTD"},
		{name: "processing instruction", raw: textEdit(`<saml:Issuer`, `<?evil x?><saml:Issuer`), want: "processing instruction"},
		{name: "malformed", raw: func(testing.TB, *testIdP) []byte { return []byte(`<samlp:Response><a></b></samlp:Response>`) }, want: "not well-formed"},
		{name: "empty", raw: func(testing.TB, *testIdP) []byte { return nil }, want: "no root"},
		{name: "not XML", raw: func(testing.TB, *testIdP) []byte { return []byte("PHNhbWxwOlJlc3BvbnNl") }, want: "text before its root"},

		// Exactly one root element, with nothing after it.
		{name: "unsigned assertion appended after the Response", raw: func(t testing.TB, p *testIdP) []byte {
			return append(p.response(t, goodSpec()), serialize(t, evil(t, p, "id-evil"))...)
		}, want: "second element"},
		{name: "second Response appended", raw: func(t testing.TB, p *testIdP) []byte {
			return append(p.response(t, goodSpec()), p.response(t, goodSpec())...)
		}, want: "second element"},
		{name: "text after the Response", raw: func(t testing.TB, p *testIdP) []byte {
			return append(p.response(t, goodSpec()), "mallory"...)
		}, want: "text after its root"},

		// Algorithms: SHA-256 or stronger.
		{name: "RSA-SHA1 signature", raw: withSpec(func(s *spec) { s.signatureMethod = dsig.RSASHA1SignatureMethod }), want: "signed with RSA-SHA1: SHA-1 is broken"},
		{name: "RSA-SHA1 response signature", raw: withSpec(func(s *spec) {
			s.signatureMethod, s.signResponse, s.signAssertion = dsig.RSASHA1SignatureMethod, true, false
		}), want: "signed with RSA-SHA1"},
		{name: "SHA-1 digest", raw: textEdit(`http://www.w3.org/2001/04/xmlenc#sha256`, `http://www.w3.org/2000/09/xmldsig#sha1`), want: "digested with SHA-1"},
		{name: "MD5 signature method", raw: textEdit(`http://www.w3.org/2001/04/xmldsig-more#rsa-sha256`, `http://www.w3.org/2001/04/xmldsig-more#rsa-md5`), want: "does not accept"},
		{name: "HMAC signature method", raw: textEdit(`http://www.w3.org/2001/04/xmldsig-more#rsa-sha256`, `http://www.w3.org/2000/09/xmldsig#hmac-sha1`), want: "does not accept"},
		{name: "canonicalization with comments", raw: textEdit(`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"`,
			`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"`), want: "canonicalized with"},
		{name: "XSLT transform", raw: textEdit(`<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
			`<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>`), want: "applies the transform"},

		// What the response says is escaped in every error.
		{name: "terminal escapes in the issuer", raw: withSpec(func(s *spec) { s.issuer = "https://idp.example.test/\u009b2J\u009b31m\u202eevil" }), want: `\u009b2J`},
		{name: "terminal escapes in the signature algorithm", raw: textEdit(`http://www.w3.org/2001/04/xmldsig-more#rsa-sha256`, "x\u009b2J\u200f"), want: `"x\u009b2J\u200f"`},
		{name: "truncated", raw: func(t testing.TB, p *testIdP) []byte {
			raw := p.response(t, goodSpec())
			return raw[:len(raw)/2]
		}, want: "not well-formed"},
		{name: "oversized", raw: func(t testing.TB, p *testIdP) []byte {
			raw := p.response(t, goodSpec())
			pad := bytes.Repeat([]byte(" "), MaxResponseSize)
			return append(raw, pad...)
		}, want: "more than"},
		{name: "deeply nested", raw: func(testing.TB, *testIdP) []byte {
			return []byte(strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100))
		}, want: "deeper"},
		{name: "not a Response", raw: func(t testing.TB, p *testIdP) []byte {
			return serialize(t, p.assertion(t, goodSpec()))
		}, want: "not a SAML Response"},
		{name: "encrypted assertion", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			root.RemoveChild(assertionOf(root))
			e := root.CreateElement("saml:EncryptedAssertion")
			e.CreateAttr("xmlns:saml", nsAssertion)
		}), want: "encrypted"},

		// Two assertions, one signed.
		{name: "wrap: unsigned assertion before the signed one", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			root.InsertChildAt(assertionOf(root).Index(), evil(t, p, "id-evil"))
		}), want: "2 assertions"},
		{name: "wrap: unsigned assertion after the signed one", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			root.AddChild(evil(t, p, "id-evil"))
		}), want: "2 assertions"},
		// Signature wrapping permutations.
		{name: "wrap: signed assertion hidden in Extensions, evil one in its place", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			root.RemoveChild(a)
			ext := root.CreateElement("samlp:Extensions")
			ext.AddChild(a)
			root.AddChild(evil(t, p, "id-evil"))
		}), want: "2 assertions"},
		{name: "wrap: signed assertion inside the evil one's Signature Object, same ID", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			root.RemoveChild(a)
			e := evil(t, p, "id-assertion-1")
			sig := a.Copy().SelectElement("Signature")
			obj := sig.CreateElement("ds:Object")
			obj.AddChild(a)
			e.InsertChildAt(1, sig)
			root.AddChild(e)
		}), want: "share the ID"},
		{name: "wrap: signature copied onto the evil assertion", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			root.RemoveChild(a)
			e := evil(t, p, "id-evil")
			e.InsertChildAt(1, a.SelectElement("Signature").Copy())
			root.AddChild(e)
		}), want: "covers \"#id-assertion-1\""},
		{name: "wrap: signature copied onto the evil assertion with the same ID", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			root.RemoveChild(a)
			e := evil(t, p, "id-assertion-1")
			e.InsertChildAt(1, a.SelectElement("Signature").Copy())
			root.AddChild(e)
		}), want: "does not verify"},
		{name: "wrap: subject changed under a valid-looking signature", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			assertionOf(root).FindElement(".//NameID").SetText("mallory@example.test")
		}), want: "does not verify"},
		{name: "wrap: signed assertion nested in the evil one's Advice", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			root.RemoveChild(a)
			e := evil(t, p, "id-evil")
			e.CreateElement("saml:Advice").AddChild(a)
			root.AddChild(e)
		}), want: "2 assertions"},
		{name: "wrap: signed assertion nested in the evil one's Subject", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			root.RemoveChild(a)
			e := evil(t, p, "id-evil")
			e.SelectElement("Subject").AddChild(a)
			root.AddChild(e)
		}), want: "2 assertions"},
		{name: "wrap: signed response hidden in an evil response's Extensions", raw: tampered(true, func(t testing.TB, p *testIdP, root *etree.Element) {
			orig := root.Copy()
			root.RemoveChild(assertionOf(root))
			root.AddChild(evil(t, p, "id-evil"))
			root.RemoveChild(root.SelectElement("Signature"))
			root.CreateAttr("ID", "id-evil-response")
			ext := etree.NewElement("samlp:Extensions")
			ext.AddChild(orig)
			root.InsertChildAt(1, ext)
		}), want: "2 assertions"},
		{name: "wrap: assertion replaced under the response's signature", raw: tampered(true, func(t testing.TB, p *testIdP, root *etree.Element) {
			root.RemoveChild(assertionOf(root))
			root.AddChild(evil(t, p, "id-assertion-1"))
		}), want: "does not verify"},
		{name: "wrap: response signature moved onto the assertion", raw: tampered(true, func(t testing.TB, p *testIdP, root *etree.Element) {
			sig := root.SelectElement("Signature")
			root.RemoveChild(sig)
			assertionOf(root).InsertChildAt(1, sig)
		}), want: "covers \"#id-response-1\""},
		{name: "wrap: extra signature in the Subject", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			a.SelectElement("Subject").AddChild(a.SelectElement("Signature").Copy())
		}), want: "signs neither"},
		{name: "wrap: two signatures on the assertion", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			a := assertionOf(root)
			a.InsertChildAt(1, a.SelectElement("Signature").Copy())
		}), want: "2 signatures"},
		{name: "signature reference covers another element", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			// A signature whose one reference is the whole document ("").
			a := assertionOf(root)
			a.FindElement(".//Reference").CreateAttr("URI", "")
		}), want: "covers \"\""},
		{name: "signature with two references", raw: tampered(false, func(t testing.TB, p *testIdP, root *etree.Element) {
			ref := assertionOf(root).FindElement(".//Reference")
			ref.Parent().AddChild(ref.Copy())
		}), want: "2 references"},
	}
}

// options are the verifier's options for the case.
func (tc badCase) options(md *saml.EntityDescriptor) Options {
	opts := testOptions(md)
	if tc.opts != nil {
		tc.opts(&opts)
	}
	return opts
}

func TestVerifyRefusesBadResponses(t *testing.T) {
	p := newTestIdP(t, "idp")
	md := p.metadata()
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.options(md)
			c, err := Verify(tc.raw(t, p), opts)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "mallory") || strings.Contains(err.Error(), "<saml") {
				t.Fatalf("error echoes the response: %q", err)
			}
			if needsEscape(err.Error()) {
				t.Fatalf("error carries unescaped bytes to the terminal: %q", err)
			}
		})
	}
}

// TestVerifyManyGroups: people in large directories belong to thousands of
// groups, and a genuine response listing them all verifies.
func TestVerifyManyGroups(t *testing.T) {
	p := newTestIdP(t, "idp")
	for _, signResponse := range []bool{false, true} {
		s := goodSpec()
		s.signResponse, s.signAssertion = signResponse, !signResponse
		s.groups = nil
		for i := range 2000 {
			s.groups = append(s.groups, fmt.Sprintf("corp-directory-group-%04d", i))
		}
		raw := p.response(t, s)
		c, err := Verify(raw, testOptions(p.metadata()))
		if err != nil {
			t.Fatalf("a %d-byte response with 2000 groups (response signed: %v): %v", len(raw), signResponse, err)
		}
		if len(c.Groups) != 2000 || c.Groups[1999] != "corp-directory-group-1999" {
			t.Errorf("%d groups read, the last %q", len(c.Groups), c.Groups[len(c.Groups)-1])
		}
	}
}

// TestVerifyAcceptsSHA1OnlyWhenAllowed: the insecure setting is what lets
// an IdP that cannot sign with SHA-256 yet through, and nothing else.
func TestVerifyAcceptsSHA1OnlyWhenAllowed(t *testing.T) {
	p := newTestIdP(t, "idp")
	s := goodSpec()
	s.signatureMethod = dsig.RSASHA1SignatureMethod
	opts := testOptions(p.metadata())
	opts.InsecureAllowSHA1 = true
	if _, err := Verify(p.response(t, s), opts); err != nil {
		t.Fatalf("RSA-SHA1 with InsecureAllowSHA1: %v", err)
	}
	raw := bytes.Replace(p.response(t, s), []byte("alice@"), []byte("mally@"), 1)
	if _, err := Verify(raw, opts); err == nil {
		t.Fatal("InsecureAllowSHA1 accepted a SHA-1 response changed after signing")
	}
}

// TestVerifyGroupsByNameOnly: groups come from the attribute whose Name is
// the configured one; a FriendlyName that says "groups" counts for nothing.
func TestVerifyGroupsByNameOnly(t *testing.T) {
	p := newTestIdP(t, "idp")
	s := goodSpec()
	s.groupsName, s.groupsFriendlyName = "http://schemas.example.test/claims/roles", "groups"
	c, err := Verify(p.response(t, s), testOptions(p.metadata()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Groups) != 0 {
		t.Errorf("groups %q were read from an attribute whose FriendlyName is groups", c.Groups)
	}
	opts := testOptions(p.metadata())
	opts.GroupsAttribute = "http://schemas.example.test/claims/roles"
	if c, err = Verify(p.response(t, s), opts); err != nil || !slices.Equal(c.Groups, []string{"ops", "staff"}) {
		t.Errorf("groups from the configured Name: %q, %v", c.Groups, err)
	}
}
