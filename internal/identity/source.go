package identity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Source says where a consumer such as the Terraform provider finds the
// person behind a run, and checks it: the session passport login stored,
// or a response handed over directly (for runs where nobody can open a
// browser). The metadata and SP entity ID come from the consumer's own
// configuration, never from the session.
type Source struct {
	// Metadata is the IdP metadata, a file or an http(s) URL.
	Metadata string
	// SPEntityID is Passport's entity ID at the IdP; "passport" when empty.
	SPEntityID      string
	GroupsAttribute string
	// SessionFile is the login cache; DefaultSessionPath when empty.
	SessionFile string
	// Response is a base64 SAML response given directly; it takes
	// precedence over the session file. ACSURL is where it was delivered
	// and is required with it.
	Response string
	ACSURL   string
	// Now, AllowedSkew, MaxSession and InsecureAllowSHA1 are as in Options.
	Now               func() time.Time
	AllowedSkew       time.Duration
	MaxSession        time.Duration
	InsecureAllowSHA1 bool
}

// DefaultSPEntityID is the SP entity ID Passport uses unless configured.
const DefaultSPEntityID = "passport"

// Claims loads the session (or the direct response) and the metadata, and
// verifies the response again. A missing or expired session is an error
// that tells the person to run passport login.
func (s Source) Claims(ctx context.Context) (Claims, error) {
	if s.Metadata == "" {
		return Claims{}, errors.New("no IdP metadata is configured: set idp_metadata in the provider's saml block or PASSPORT_SAML_METADATA")
	}
	var sess Session
	if s.Response != "" {
		if s.ACSURL == "" {
			return Claims{}, errors.New("a SAML response given directly needs the ACS URL it was delivered to (acs_url)")
		}
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s.Response), ""))
		if err != nil {
			return Claims{}, fmt.Errorf("the SAML response given directly is not base64: %v", err)
		}
		sess = Session{Response: raw, ACSURL: s.ACSURL}
	} else {
		path := s.SessionFile
		if path == "" {
			var err error
			if path, err = DefaultSessionPath(); err != nil {
				return Claims{}, err
			}
		}
		var err error
		if sess, err = LoadSession(path); err != nil {
			return Claims{}, err
		}
	}
	md, err := LoadMetadata(ctx, s.Metadata)
	if err != nil {
		return Claims{}, err
	}
	return sess.Verify(Options{
		Metadata: md, SPEntityID: orDefaultString(s.SPEntityID, DefaultSPEntityID),
		ACSURL: s.ACSURL, GroupsAttribute: s.GroupsAttribute,
		Now: s.Now, AllowedSkew: s.AllowedSkew, MaxSession: s.MaxSession,
		InsecureAllowSHA1: s.InsecureAllowSHA1,
	})
}
