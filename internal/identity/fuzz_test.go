package identity

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary documents, seeded with good responses of
// several shapes and every bad one from the suite, to Verify. It must never
// panic, never put an unescaped byte of the document in an error, and
// whatever it accepts must be a response for alice from the test IdP whose
// groups and session end are what a plain XML reader finds in the
// document: no claim may come from anywhere but the one assertion there.
func FuzzVerify(f *testing.F) {
	p := newTestIdP(f, "idp")
	f.Add(p.response(f, goodSpec()))
	both := goodSpec()
	both.signResponse = true
	f.Add(p.response(f, both))
	messy := goodSpec()
	messy.groups = []string{" ops ", "", "staff", "ops", "on-call"}
	f.Add(p.response(f, messy))
	noSessionEnd := goodSpec()
	noSessionEnd.sessionEnd = nil
	f.Add(p.response(f, noSessionEnd))
	for _, tc := range badCases() {
		f.Add(tc.raw(f, p))
	}
	// Genuine responses at the edges: thousands of groups, and groups
	// under a FriendlyName that must not count.
	many := goodSpec()
	for i := range 2000 {
		many.groups = append(many.groups, fmt.Sprintf("corp-directory-group-%04d", i))
	}
	f.Add(p.response(f, many))
	friendly := goodSpec()
	friendly.groupsName, friendly.groupsFriendlyName = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "groups"
	f.Add(p.response(f, friendly))
	md := p.metadata()
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Verify(raw, testOptions(md))
		if err != nil {
			if needsEscape(err.Error()) {
				t.Fatalf("error carries unescaped bytes: %q", err)
			}
			return
		}
		if c.Subject != "alice@example.test" || c.Issuer != testIdPEntity {
			t.Fatalf("accepted claims %+v", c)
		}
		want, err := plainRead(raw)
		if err != nil {
			t.Fatalf("Verify accepted a response that a plain XML reader cannot read (%v); claims %+v", err, c)
		}
		if !slices.Equal(c.Groups, want.groups) {
			t.Fatalf("accepted groups %q; the document's assertion lists %q", c.Groups, want.groups)
		}
		if !c.Expires.Equal(want.expires) {
			t.Fatalf("accepted a session ending %s; the document's assertion says %s", c.Expires, want.expires)
		}
	})
}

// FuzzEscape: whatever goes in, what escape returns is safe to print and
// says the same for text that was already safe.
func FuzzEscape(f *testing.F) {
	for _, seed := range []string{"plain text", "\x1b[2J", "\u009b31m", "\u202eevil", "\xff\xfe", "émigré", "tab\there"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := escape(s)
		if needsEscape(e) {
			t.Fatalf("escape(%q) = %q is not safe", s, e)
		}
		if !needsEscape(s) && e != s {
			t.Fatalf("escape changed safe text %q to %q", s, e)
		}
		if q := quote(s); needsEscape(q) || len(q) > 6*maxQuoted+5 {
			t.Fatalf("quote(%q) = %q", s, q)
		}
	})
}

// plainClaims is what plainRead finds.
type plainClaims struct {
	groups  []string
	expires time.Time
}

// xmlResponse is a SAML Response as encoding/xml reads it: a reader that
// shares no code with Verify (etree, goxmldsig, crewjam/saml).
type xmlResponse struct {
	XMLName    xml.Name       `xml:"urn:oasis:names:tc:SAML:2.0:protocol Response"`
	Assertions []xmlAssertion `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
}

type xmlAssertion struct {
	IssueInstant string `xml:"IssueInstant,attr"`
	Authn        []struct {
		SessionNotOnOrAfter string `xml:"SessionNotOnOrAfter,attr"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:assertion AuthnStatement"`
	Attributes []struct {
		Name   string   `xml:"Name,attr"`
		Values []string `xml:"urn:oasis:names:tc:SAML:2.0:assertion AttributeValue"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:assertion AttributeStatement>Attribute"`
}

// plainRead reads the groups and the session end from the one assertion
// directly inside the Response, by the rules in the package documentation:
// the groups attribute's values, trimmed, without blanks or repeats; the
// session ends at the earliest SessionNotOnOrAfter, and at the latest
// DefaultMaxSession after IssueInstant.
func plainRead(raw []byte) (plainClaims, error) {
	var r xmlResponse
	if err := xml.NewDecoder(bytes.NewReader(raw)).Decode(&r); err != nil {
		return plainClaims{}, err
	}
	if len(r.Assertions) != 1 {
		return plainClaims{}, fmt.Errorf("the Response holds %d assertions", len(r.Assertions))
	}
	a := r.Assertions[0]
	var c plainClaims
	for _, attr := range a.Attributes {
		if attr.Name != DefaultGroupsAttribute {
			continue
		}
		for _, v := range attr.Values {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(c.groups, v) {
				c.groups = append(c.groups, v)
			}
		}
	}
	issued, err := time.Parse(time.RFC3339Nano, a.IssueInstant)
	if err != nil {
		return plainClaims{}, err
	}
	c.expires = issued.Add(DefaultMaxSession)
	for _, s := range a.Authn {
		if s.SessionNotOnOrAfter == "" {
			continue
		}
		end, err := time.Parse(time.RFC3339Nano, s.SessionNotOnOrAfter)
		if err != nil {
			return plainClaims{}, err
		}
		if end.Before(c.expires) {
			c.expires = end
		}
	}
	return c, nil
}
