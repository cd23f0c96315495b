package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
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
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{
				Config:      request(strict, production.Info().InstanceID, staging.Info().InstanceID),
				ExpectError: regexp.MustCompile(`(?s)` + production.Info().InstanceID + `.*forbidden by policy "no-production"`),
			},
			{
				// The refusal above touched no host, not even the
				// staging host it would have allowed.
				PreConfig: func() { l.nothingGranted(t) },
				Config:    request(strict, staging.Info().InstanceID),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("passport_access_request.r", "target_status."+staging.Info().InstanceID, "active"),
					logsIn("passport_access_request.r", staging),
					func(*terraform.State) error {
						if users := passportUsers(t, production); len(users) != 0 {
							return fmt.Errorf("a staging-only request left Passport users on %s: %v", production.Info().InstanceID, users)
						}
						return nil
					},
				),
			},
			{
				// The lab's own policy (Parameter Store) lets its operator
				// reach production.
				Config: request("", staging.Info().InstanceID, production.Info().InstanceID),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("passport_access_request.r", "target_status."+production.Info().InstanceID, "active"),
					logsIn("passport_access_request.r", staging, production),
				),
			},
		},
	})
}

// logsIn checks that the user of the request at address logs in to each
// host, without sudo.
func logsIn(address string, hosts ...*sandbox.Host) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a, err := attributes(s, address)
		if err != nil {
			return err
		}
		creds, err := credentialsOf(a, nil)
		if err != nil {
			return err
		}
		var errs []error
		for _, h := range hosts {
			errs = append(errs, creds.checkLogin(h, false))
		}
		return errors.Join(errs...)
	}
}

// nothingGranted checks what a refused request must leave behind: no
// Passport user, grant record or sudoers entry on any of the lab's hosts,
// and no grant in the ledger.
func (a *accLab) nothingGranted(t *testing.T) {
	t.Helper()
	const look = `getent passwd | cut -d: -f1 | grep '^pp-' | sed 's/^/user /'
getent group ` + hostscript.PassportGroup + ` | cut -d: -f4 | grep . | sed 's/^/group members /'
ls -A ` + hostscript.GrantsDir + ` 2>/dev/null | sed 's/^/grant record /'
ls -d ` + hostscript.SudoersPrefix + `* 2>/dev/null | sed 's/^/sudoers file /'
true`
	for _, h := range a.Hosts {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: look})
		cancel()
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("looking for Passport's traces on %s: %v (exit %d)", h.Info().InstanceID, err, res.ExitCode)
		}
		if found := strings.TrimSpace(string(res.Stdout)); found != "" {
			t.Errorf("a refused request left on %s:\n%s", h.Info().InstanceID, found)
		}
	}
	book, err := ledger.Open(context.Background(), os.Getenv("PASSPORT_LEDGER"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	for _, state := range []ledger.State{ledger.Provisioning, ledger.Active, ledger.Revoking, ledger.Revoked, ledger.Expired, ledger.Failed} {
		grants, err := book.List(context.Background(), state)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			t.Errorf("a refused request left a %s grant in the ledger: %s for %s on %v", state, g.ID, g.Requester, g.Targets)
		}
	}
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
