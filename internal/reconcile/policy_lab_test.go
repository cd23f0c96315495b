package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

const policyParameter = "/passport/policy"

// Operators may reach staging; the tightened policy takes that away.
const (
	opsMayReachStaging = `
@id("ops-staging")
permit (principal in Passport::Group::"ops", action == Passport::Action::"access", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "staging" };
`
	adminsOnly = `
@id("admins-only")
permit (principal in Passport::Group::"admins", action == Passport::Action::"access", resource);
`
)

func (r *rig) putPolicy(t *testing.T, doc string) {
	t.Helper()
	if _, err := r.ssm.PutParameter(context.Background(), &ssmsdk.PutParameterInput{
		Name: aws.String(policyParameter), Value: aws.String(doc), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
}

// TestTightenedPolicyRevokesOnTheNextPass: the real Cedar policy in the
// lab's Parameter Store, the real tags from its EC2, a grant made by a
// person in ops, and a reconciler that asks the same policy again.
func TestTightenedPolicyRevokesOnTheNextPass(t *testing.T) {
	r := newRig(t, 1)
	ctx := context.Background()
	h := r.lab.Hosts[0]
	if h.Info().ComputerName != "web-1" {
		t.Fatalf("the lab's first host is %s; the test relies on web-1 being tagged Env=staging", h.Info().ComputerName)
	}
	tags := policy.EC2Tags{Client: ec2.NewFromConfig(r.lab.AWSConfig())}
	load := func(ctx context.Context) (*policy.Policy, error) {
		return policy.Load(ctx, "ssm://"+policyParameter, r.ssm)
	}
	r.putPolicy(t, opsMayReachStaging)
	current, err := load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	person, err := access.New(access.Config{
		Fleet:      fleet.New(r.ssm, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond}),
		Now:        r.clock.Now,
		Ledger:     r.ledger,
		Authorizer: &policy.Gate{Policy: current, Tags: tags},
	})
	if err != nil {
		t.Fatal(err)
	}
	key, priv := newKey(t)
	g, err := person.Grant(ctx, access.Request{
		Reason: "CHG-88: rotate the web tier's certificates", Targets: r.hostIDs(), Duration: time.Hour, CA: newCA(t),
		PublicKey: string(ssh.MarshalAuthorizedKey(key)), Requester: "carol@example.com", Groups: []string{"ops"},
	})
	if err != nil {
		t.Fatalf("ops asking for staging under the first policy: %v", err)
	}

	rec, err := New(Config{
		Ledger: r.ledger, Access: r.service(t, r.ledger, "reconciler/p"), Holder: "reconciler/p", Now: r.clock.Now,
		Authorizer: &PolicyCheck{Load: load, Tags: tags, Now: r.clock.Now},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep := pass(t, rec); rep.Denied != 0 || rep.Revoked != 0 {
		t.Fatalf("a pass while policy permits the grant: %+v", rep)
	}
	if err := login(t, h, g, priv); err != nil {
		t.Fatalf("login while policy permits it: %v", err)
	}

	r.putPolicy(t, adminsOnly)
	r.clock.Advance(DefaultPolicyMaxAge)
	if rep := pass(t, rec); rep.Denied != 1 || rep.Revoked != 1 {
		t.Fatalf("the pass after policy was tightened: %+v, want the grant denied and revoked", rep)
	}
	if hasUser(t, h, g.Username) {
		t.Errorf("%s still has %s", h.Info().InstanceID, g.Username)
	}
	if err := login(t, h, g, priv); err == nil {
		t.Error("the certificate still logs in after policy took the access away")
	}
	if got := r.record(t, g.ID); got.State != ledger.Revoked {
		t.Errorf("record: %s, want revoked", got.State)
	}
	events, _ := r.ledger.Events(ctx, ledger.Filter{GrantID: g.ID})
	var denied *ledger.Event
	for i := range events {
		if events[i].Action == ledger.ActionDenied {
			denied = &events[i]
		}
	}
	if denied == nil || !strings.Contains(denied.Detail, h.Info().InstanceID) || !strings.Contains(denied.Detail, "policy no longer permits it") {
		t.Errorf("no denied event naming the host and why among %+v", events)
	}
}

// TestVanishedPolicyRevokesNothing: a policy parameter that was deleted
// (more often an accident than a wish) is a policy that cannot be read.
func TestVanishedPolicyRevokesNothing(t *testing.T) {
	r := newRig(t, 0)
	ctx := context.Background()
	// The reconciler pointed at a parameter that is not there (any more).
	check := &PolicyCheck{Load: func(ctx context.Context) (*policy.Policy, error) {
		return policy.Load(ctx, "ssm:///passport/policy-deleted", r.ssm)
	}}
	g := ledger.Grant{ID: "ar-0000000000000001", Requester: "carol@example.com", Groups: []string{"ops"},
		IssuedAt: r.clock.Now(), ExpiresAt: r.clock.Now().Add(time.Hour), State: ledger.Active,
		Targets: []ledger.Target{{InstanceID: "i-0123456789abcdef0", State: ledger.Active}}}
	ok, _, err := check.Permits(ctx, g)
	if err == nil || ok || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Permits with the policy parameter gone: %v, %v; want an error saying so", ok, err)
	}
}
