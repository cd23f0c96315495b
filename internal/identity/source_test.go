package identity

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSourceClaims(t *testing.T) {
	p := newTestIdP(t, "idp")
	dir := t.TempDir()
	mdFile := filepath.Join(dir, "idp.xml")
	mdXML, err := xml.Marshal(p.metadata())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(mdFile, mdXML, 0o600)
	raw := p.response(t, goodSpec())
	sessionFile := filepath.Join(dir, "session.json")
	if err := SaveSession(sessionFile, Session{Subject: "forged", ACSURL: testACS, Response: raw}); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) func() time.Time { return func() time.Time { return testNow.Add(d) } }

	for _, tc := range []struct {
		name string
		src  Source
		want string // error text; "" for success
	}{
		{"session file", Source{Metadata: mdFile, SPEntityID: testSP, SessionFile: sessionFile, Now: at(time.Hour)}, ""},
		{"response given directly", Source{Metadata: mdFile, SPEntityID: testSP, Response: base64.StdEncoding.EncodeToString(raw), ACSURL: testACS, Now: at(time.Hour)}, ""},
		{"expired", Source{Metadata: mdFile, SPEntityID: testSP, SessionFile: sessionFile, Now: at(9 * time.Hour)}, "run passport login"},
		{"no session", Source{Metadata: mdFile, SessionFile: filepath.Join(dir, "none.json")}, "run passport login"},
		{"no metadata", Source{SessionFile: sessionFile}, "no IdP metadata"},
		{"default SP entity ID is the audience", Source{Metadata: mdFile, SessionFile: sessionFile, Now: at(time.Hour)}, ""},
		{"another SP entity ID", Source{Metadata: mdFile, SPEntityID: "other", SessionFile: sessionFile, Now: at(time.Hour)}, "audience"},
		{"direct response without ACS URL", Source{Metadata: mdFile, Response: "eA=="}, "ACS URL"},
		{"direct response not base64", Source{Metadata: mdFile, Response: "%%", ACSURL: testACS}, "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.src.Claims(context.Background())
			if tc.want == "" {
				if err != nil || c.Subject != "alice@example.test" {
					t.Fatalf("Claims = %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := (Source{Metadata: mdFile, SessionFile: sessionFile, Now: at(9 * time.Hour)}).Claims(context.Background()); !errors.Is(err, ErrExpired) {
		t.Errorf("expired session: %v is not ErrExpired", err)
	}
}
