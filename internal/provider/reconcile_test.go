package provider

import (
	"context"
	"errors"
	"os"
	"regexp"
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

// TestAccDestroyAgainFinishesAFailedDestroy: a destroy that cannot reach a
// stopped host fails naming it and keeps the request in the state; once
// the host is back, running destroy again ends the login there.
func TestAccDestroyAgainFinishesAFailedDestroy(t *testing.T) {
	l := startAccLab(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	id1, id2 := h1.Info().InstanceID, h2.Info().InstanceID
	config := l.config(`
resource "passport_certificate_authority" "ca" {
  name          = "destroy-twice"
  key_algorithm = "ed25519"
  key_store     = "state"
}
resource "passport_access_request" "r" {
  reason                = "INC-12: destroyed while a host is down"
  targets               = ["` + id1 + `", "` + id2 + `"]
  certificate_authority = passport_certificate_authority.ca.signer
}
`)
	var person loginCredentials
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(s *terraform.State) error {
					a, err := attributes(s, "passport_access_request.r")
					if err != nil {
						return err
					}
					if person, err = credentialsOf(a, nil); err != nil {
						return err
					}
					return errors.Join(person.checkLogin(h1, false), person.checkLogin(h2, false))
				},
			},
			{
				PreConfig: func() {
					if err := h2.Stop(); err != nil {
						t.Fatal(err)
					}
				},
				Config:      config,
				Destroy:     true,
				ExpectError: regexp.MustCompile(regexp.QuoteMeta(id2)),
			},
			{
				PreConfig: func() {
					if err := person.checkRefused(h1); err != nil {
						t.Errorf("after the failed destroy: %v", err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := h2.Start(ctx); err != nil {
						t.Fatal(err)
					}
					if err := person.checkLogin(h2, false); err != nil {
						t.Fatalf("setup: before the second destroy: %v", err)
					}
				},
				Config:  config,
				Destroy: true,
			},
		},
		CheckDestroy: func(*terraform.State) error {
			return errors.Join(person.checkRefused(h1), person.checkRefused(h2))
		},
	})
}
