package provider

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
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
				PreConfig:   func() { l.nothingGranted(t) },
				Config:      config("just looking around", "1h", staging),
				ExpectError: regexp.MustCompile(`(?s)` + staging + `.*forbidden by policy "people-name-a-ticket"`),
			},
			{
				PreConfig:   func() { l.nothingGranted(t) },
				Config:      config("INC-7: disk alert", "6h", staging),
				ExpectError: regexp.MustCompile(`(?s)` + staging + `.*no policy .* permits "alice"`),
			},
			{
				PreConfig: func() { l.nothingGranted(t) },
				Config:    config("INC-7: disk alert", "1h", staging),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("passport_access_request.r", "requester", "alice"),
					resource.TestCheckResourceAttr("passport_access_request.r", "requester_groups.#", "1"),
					resource.TestCheckResourceAttr("passport_access_request.r", "requester_groups.0", "ops"),
					resource.TestCheckResourceAttr("passport_access_request.r", "target_status."+staging, "active"),
					logsIn("passport_access_request.r", l.Hosts[0]),
					func(s *terraform.State) error {
						a, err := attributes(s, "passport_access_request.r")
						if err != nil {
							return err
						}
						return recordedAs(t, a, "alice", "ops")
					},
				),
			},
			{
				// A longer window, still within what ops may have: the new
				// certificate names the same person and groups.
				Config: config("INC-7: disk alert", "2h", staging),
				Check: func(s *terraform.State) error {
					a, err := attributes(s, "passport_access_request.r")
					if err != nil {
						return err
					}
					return recordedAs(t, a, "alice", "ops")
				},
			},
		},
	})
}

// recordedAs checks that the request's certificate key id and its ledger
// record name subject and groups.
func recordedAs(t *testing.T, a map[string]string, subject string, groups ...string) error {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(a["certificate"]))
	if err != nil {
		return err
	}
	keyID := pub.(*ssh.Certificate).KeyId
	if want := "subject=" + subject + " groups=" + strings.Join(groups, ","); !strings.HasSuffix(keyID, want) {
		return fmt.Errorf("certificate key id %q does not end %q", keyID, want)
	}
	book, err := ledger.Open(context.Background(), os.Getenv("PASSPORT_LEDGER"), ledger.Options{})
	if err != nil {
		return err
	}
	defer book.Close()
	g, err := book.Get(context.Background(), a["id"])
	if err != nil {
		return err
	}
	if g.Requester != subject || !slices.Equal(g.Groups, groups) {
		return fmt.Errorf("the ledger records %s in %v, want %s in %v", g.Requester, g.Groups, subject, groups)
	}
	return nil
}
