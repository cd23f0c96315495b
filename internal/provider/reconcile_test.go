package provider

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/reconcile"
)

// TestAccReconcilerEndsWhatTerraformMade: nobody runs terraform destroy.
// The window ends, the reconciler revokes the grant from the ledger the
// provider recorded it in (the same revoke path as destroy), the user is
// gone from the host, and the next plan replaces the request: no error.
func TestAccReconcilerEndsWhatTerraformMade(t *testing.T) {
	l := startAccLab(t, 1)
	h := l.Hosts[0]
	var user string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{
				Config: l.config(`
resource "passport_certificate_authority" "ca" {
  name          = "reconciled"
  key_algorithm = "ed25519"
  key_store     = "state"
}
resource "passport_access_request" "r" {
  reason                = "INC-11: left to the reconciler"
  duration              = "1h"
  targets               = ["` + h.Info().InstanceID + `"]
  certificate_authority = passport_certificate_authority.ca.signer
}
`),
				Check: func(s *terraform.State) error {
					a, err := attributes(s, "passport_access_request.r")
					user = a["username"]
					return err
				},
			},
			{
				PreConfig: func() {
					l.clock.Advance(2 * time.Hour)
					reconcileOnce(t, l)
					for _, u := range passportUsers(t, h) {
						if u == user {
							t.Fatalf("the reconciler left %s on %s", user, h.Info().InstanceID)
						}
					}
				},
				RefreshState:       true,
				ExpectNonEmptyPlan: true,
				RefreshPlanChecks: resource.RefreshPlanChecks{PostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("passport_access_request.r", plancheck.ResourceActionReplace),
				}},
			},
		},
	})
}

// reconcileOnce runs one reconcile pass on the test's ledger with the
// test's clock, as `passport reconcile --once` would.
func reconcileOnce(t *testing.T, l *accLab) {
	t.Helper()
	ctx := context.Background()
	book, err := ledger.Open(ctx, os.Getenv("PASSPORT_LEDGER"), ledger.Options{Now: l.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	svc, err := access.New(access.Config{
		Fleet:  fleet.New(ssm.NewFromConfig(l.AWSConfig()), fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond}),
		Now:    l.clock.Now,
		Ledger: book,
		Actor:  "reconciler/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reconcile.New(reconcile.Config{Ledger: book, Access: svc, Holder: "reconciler/test", Now: l.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	report, err := r.Pass(ctx)
	if err != nil {
		t.Fatalf("reconcile pass: %v (%+v)", err, report)
	}
}
