package identity

import (
	"fmt"
	"testing"
)

// FuzzVerify feeds arbitrary documents, seeded with a good response and
// every bad one from the suite, to Verify. It must never panic, never
// accept anything but a response signed by the test IdP for alice, and
// never put an unescaped byte of the document in an error.
func FuzzVerify(f *testing.F) {
	p := newTestIdP(f, "idp")
	f.Add(p.response(f, goodSpec()))
	both := goodSpec()
	both.signResponse = true
	f.Add(p.response(f, both))
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
		if err == nil && (c.Subject != "alice@example.test" || c.Issuer != testIdPEntity) {
			t.Fatalf("accepted claims %+v", c)
		}
		if err != nil && needsEscape(err.Error()) {
			t.Fatalf("error carries unescaped bytes: %q", err)
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
