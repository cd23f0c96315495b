package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// TestAccPolicyDecides: the administrators' policy, not the requester's
// configuration, decides. The lab's policy lets its operator in; a policy
// that forbids production refuses a request for a production host by
// name, and leaves every host as it was.
func TestAccPolicyDecides(t *testing.T) {
	l := startAccLab(t, 2)
	staging, production := l.Hosts[0], l.Hosts[1] // the lab tags hosts staging, production, ...
	if staging.Info().Tags["Env"] != "staging" || production.Info().Tags["Env"] != "production" {
		t.Fatalf("lab tags changed: %v, %v", staging.Info().Tags, production.Info().Tags)
	}
	strict := filepath.Join(t.TempDir(), "policy.cedar")
	if err := os.WriteFile(strict, []byte(`
@id("everyone-staging")
permit (principal, action == Passport::Action::"access", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "staging" };

@id("no-production")
forbid (principal, action == Passport::Action::"access", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "production" };
`), 0o600); err != nil {
		t.Fatal(err)
	}
	request := func(source string, targets ...string) string {
		cfg := l.config(`
resource "passport_certificate_authority" "ca" {
  name          = "policy"
  key_algorithm = "ed25519"
  key_store     = "state"
}
resource "passport_access_request" "r" {
  reason                = "INC-42: policy acceptance test"
  targets               = ` + hclList(targets) + `
  certificate_authority = passport_certificate_authority.ca.signer
}
`)
		if source != "" {
			cfg = regexp.MustCompile(`provider "passport" \{`).ReplaceAllString(cfg, "provider \"passport\" {\n  policy_source = \"file://"+source+"\"")
		}
		return cfg
	}
	untouched := func(*terraform.State) error {
		if users := passportUsers(t, production); len(users) != 0 {
			t.Errorf("a denied request left Passport users on %s: %v", production.Info().InstanceID, users)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{
				Config:      request(strict, production.Info().InstanceID, staging.Info().InstanceID),
				ExpectError: regexp.MustCompile(`(?s)` + production.Info().InstanceID + `.*forbidden by policy "no-production"`),
			},
			{
				Config: request(strict, staging.Info().InstanceID),
				Check: resource.ComposeAggregateTestCheckFunc(
					untouched,
					resource.TestCheckResourceAttr("passport_access_request.r", "target_status."+staging.Info().InstanceID, "active"),
				),
			},
			{
				// The lab's own policy (Parameter Store) lets its operator
				// reach production.
				Config: request("", staging.Info().InstanceID, production.Info().InstanceID),
				Check:  resource.TestCheckResourceAttr("passport_access_request.r", "target_status."+production.Info().InstanceID, "active"),
			},
		},
	})
}

// hclList writes strings as an HCL list.
func hclList(items []string) string {
	out := "["
	for i, s := range items {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", s)
	}
	return out + "]"
}
