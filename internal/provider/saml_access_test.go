package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// TestAccSignedInPersonGetsWhatPolicyAllows: with a saml block, the
// requester is the person signed in at the lab IdP, and the lab's policy
// decides by their groups. alice is in ops: staging with a ticket, for at
// most four hours, never production.
func TestAccSignedInPersonGetsWhatPolicyAllows(t *testing.T) {
	l := startAccLab(t, 2)
	staging, production := l.Hosts[0].Info().InstanceID, l.Hosts[1].Info().InstanceID
	alice := labLogin(t, l, "alice", "alice-lab")
	config := func(reason, duration string, targets ...string) string {
		return regexp.MustCompile(`provider "passport" \{`).ReplaceAllString(l.config(fmt.Sprintf(`
resource "passport_certificate_authority" "ca" {
  name          = "saml"
  key_algorithm = "ed25519"
  key_store     = "state"
}
resource "passport_access_request" "r" {
  reason                = %q
  duration              = %q
  targets               = %s
  certificate_authority = passport_certificate_authority.ca.signer
}
`, reason, duration, hclList(targets))), fmt.Sprintf("provider \"passport\" {\n  saml {\n    session_file = %q\n  }", alice))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{
				Config:      config("INC-7: disk alert", "1h", staging, production),
				ExpectError: regexp.MustCompile(`(?s)` + production + `.*no policy .* permits "alice"`),
			},
			{
				Config:      config("just looking around", "1h", staging),
				ExpectError: regexp.MustCompile(`(?s)` + staging + `.*forbidden by policy "people-name-a-ticket"`),
			},
			{
				Config:      config("INC-7: disk alert", "6h", staging),
				ExpectError: regexp.MustCompile(`(?s)` + staging + `.*no policy .* permits "alice"`),
			},
			{
				Config: config("INC-7: disk alert", "2h", staging),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("passport_access_request.r", "requester", "alice"),
					resource.TestCheckResourceAttr("passport_access_request.r", "target_status."+staging, "active"),
					func(s *terraform.State) error {
						a, err := attributes(s, "passport_access_request.r")
						if err != nil {
							return err
						}
						creds, err := credentialsOf(a, nil)
						if err != nil {
							return err
						}
						return creds.checkLogin(l.Hosts[0], false)
					},
				),
			},
		},
	})
}
