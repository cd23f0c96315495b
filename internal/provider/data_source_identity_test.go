package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/passport-access/terraform-provider-passport/internal/identity"
	"github.com/passport-access/terraform-provider-passport/internal/lab/browser"
)

// labLogin signs a lab person in as passport login does, typing their name
// and password into the lab IdP's page in headless Chromium, and returns
// the session file the provider then reads.
func labLogin(t *testing.T, a *accLab, user, password string) string {
	t.Helper()
	b, err := browser.Find()
	if err != nil {
		t.Skip(err)
	}
	md, err := identity.LoadMetadata(context.Background(), a.IdP.MetadataURL())
	if err != nil {
		t.Fatal(err)
	}
	// The flow of passport login, with a real browser at the IdP's page.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	browsed := make(chan error, 1)
	s, err := identity.Login(ctx, identity.LoginConfig{
		Metadata: md, SPEntityID: identity.DefaultSPEntityID,
		Open: func(url string) error {
			go func() {
				_, err := b.SignIn(ctx, url, user, password)
				browsed <- err
			}()
			return nil
		},
	})
	if err != nil {
		select {
		case berr := <-browsed:
			t.Fatalf("sign-in as %s: %v (the browser: %v)", user, err, berr)
		default:
			t.Fatalf("sign-in as %s: %v", user, err)
		}
	}
	path := filepath.Join(t.TempDir(), "session.json")
	if err := identity.SaveSession(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAccIdentityDataSource(t *testing.T) {
	a := startAccLab(t, 0)
	carol := labLogin(t, a, "carol", "carol-lab")
	config := func(session string) string {
		// The lab exports PASSPORT_SAML_METADATA; the block names only
		// the session.
		return a.config(fmt.Sprintf(`
provider "passport" {
  alias = "me"
  saml {
    session_file = %q
  }
}

data "passport_identity" "me" {
  provider = passport.me
}
`, session))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: a.factories(),
		Steps: []resource.TestStep{
			{
				Config: config(carol),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.passport_identity.me", "subject", "carol"),
					resource.TestCheckResourceAttr("data.passport_identity.me", "groups.#", "2"),
					resource.TestCheckResourceAttr("data.passport_identity.me", "groups.0", "admins"),
					resource.TestCheckResourceAttr("data.passport_identity.me", "groups.1", "ops"),
					resource.TestCheckResourceAttr("data.passport_identity.me", "issuer", a.IdP.MetadataURL()),
					resource.TestMatchResourceAttr("data.passport_identity.me", "expires_at", regexp.MustCompile(`^\d{4}-\d\d-\d\dT`)),
				),
			},
			{
				PreConfig:   func() { a.clock.Advance(9 * time.Hour) },
				Config:      config(carol),
				ExpectError: regexp.MustCompile(`(?s)No valid SAML session.*run passport login`),
			},
			{
				Config:      config(filepath.Join(t.TempDir(), "nobody.json")),
				ExpectError: regexp.MustCompile(`(?s)no SAML session; run passport login`),
			},
		},
	})
}
