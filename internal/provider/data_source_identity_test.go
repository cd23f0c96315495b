package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/passport-access/terraform-provider-passport/internal/identity"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
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

// TestAccIdentityDataSource: who the provider says is running Terraform.
// Direct, the SAML session `passport login` stored (carol, signed in with a
// real browser); through the service, whoever it signed in: alice, who ran
// `passport login --server`, or the lab's requester machine. A sign-in
// that has ended says to sign in again.
func TestAccIdentityDataSource(t *testing.T) {
	runModes(t, []accMode{direct, serviceAlice, serviceMachine}, testIdentityDataSource)
}

func testIdentityDataSource(t *testing.T, mode accMode) {
	a := startAccLabIn(t, lab.Options{}, mode)
	const addr = "data.passport_identity.me"
	config := func(string) string { return a.config(`data "passport_identity" "me" {}`) }
	want := map[string]string{"kind": "person", "subject": mode.requester(), "issuer": a.server}
	var groups []string
	switch {
	case mode.machine:
		want["kind"] = "machine"
	case mode.service():
		groups = []string{"ops"}
	default:
		config = func(session string) string {
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
		want["subject"], want["issuer"], groups = "carol", a.IdP.MetadataURL(), []string{"admins", "ops"}
	}
	session := ""
	if !mode.service() {
		session = labLogin(t, a, "carol", "carol-lab")
	}
	checks := []resource.TestCheckFunc{
		resource.TestCheckResourceAttr(addr, "groups.#", strconv.Itoa(len(groups))),
		resource.TestMatchResourceAttr(addr, "expires_at", regexp.MustCompile(`^\d{4}-\d\d-\d\dT`)),
	}
	for k, v := range want {
		checks = append(checks, resource.TestCheckResourceAttr(addr, k, v))
	}
	for i, g := range groups {
		checks = append(checks, resource.TestCheckResourceAttr(addr, "groups."+strconv.Itoa(i), g))
	}
	steps := []resource.TestStep{{Config: config(session), Check: resource.ComposeAggregateTestCheckFunc(checks...)}}
	// A machine signs in afresh whenever it runs; a person's sign-in ends.
	if !mode.machine {
		steps = append(steps, resource.TestStep{
			PreConfig:   func() { a.clock.Advance(13 * time.Hour) },
			Config:      config(session),
			ExpectError: regexp.MustCompile(`(?s)(No valid SAML session|Cannot sign in to the Passport service).*run passport login`),
		})
	}
	if !mode.service() {
		steps = append(steps, resource.TestStep{
			Config:      config(filepath.Join(t.TempDir(), "nobody.json")),
			ExpectError: regexp.MustCompile(`(?s)no SAML session; run passport login`),
		})
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: a.factories(), Steps: steps})
}
