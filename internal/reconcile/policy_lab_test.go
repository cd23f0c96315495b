package reconcile

import (
	"context"
	"crypto/ed25519"
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
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
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

// policyRig is a grant made under the lab's Cedar policy in Parameter
// Store, and a reconciler that asks that policy again.
type policyRig struct {
	*rig
	host *sandbox.Host
	rec  *Reconciler
	g    *access.Grant
	priv ed25519.PrivateKey
}

// grantUnderPolicy publishes opsMayReachStaging, has carol (in ops) granted
// web-1 under it, and runs a first pass, which must leave the grant alone.
func grantUnderPolicy(t *testing.T) *policyRig {
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
	return &policyRig{rig: r, host: h, rec: rec, g: g, priv: priv}
}

// deniedEvent returns the grant's policy denial on record, or nil.
func (p *policyRig) deniedEvent(t *testing.T) *ledger.Event {
	t.Helper()
	events, err := p.ledger.Events(context.Background(), ledger.Filter{GrantID: p.g.ID})
	if err != nil {
		t.Fatal(err)
	}
	for i := range events {
		if events[i].Action == ledger.ActionDenied {
			return &events[i]
		}
	}
	return nil
}

// TestTightenedPolicyRevokesOnTheNextPass: the real Cedar policy in the
// lab's Parameter Store, the real tags from its EC2, a grant made by a
// person in ops, and a reconciler that asks the same policy again.
func TestTightenedPolicyRevokesOnTheNextPass(t *testing.T) {
	p := grantUnderPolicy(t)
	p.putPolicy(t, adminsOnly)
	p.clock.Advance(DefaultPolicyMaxAge)
	if rep := pass(t, p.rec); rep.Denied != 1 || rep.Revoked != 1 {
		t.Fatalf("the pass after policy was tightened: %+v, want the grant denied and revoked", rep)
	}
	if hasUser(t, p.host, p.g.Username) {
		t.Errorf("%s still has %s", p.host.Info().InstanceID, p.g.Username)
	}
	if err := login(t, p.host, p.g, p.priv); err == nil {
		t.Error("the certificate still logs in after policy took the access away")
	}
	if got := p.record(t, p.g.ID); got.State != ledger.Revoked {
		t.Errorf("record: %s, want revoked", got.State)
	}
	denied := p.deniedEvent(t)
	if denied == nil || !strings.Contains(denied.Detail, p.host.Info().InstanceID) || !strings.Contains(denied.Detail, "policy no longer permits it") {
		t.Errorf("no denied event naming the host and why: %+v", denied)
	}
}

// TestVanishedPolicyRevokesNothing: a policy parameter that was deleted
// (more often an accident than a wish) is a policy that cannot be read.
// The pass says so and revokes nothing: the user is still on the host and
// logs in, and the grant is active with no denial on record.
func TestVanishedPolicyRevokesNothing(t *testing.T) {
	p := grantUnderPolicy(t)
	if _, err := p.ssm.DeleteParameter(context.Background(), &ssmsdk.DeleteParameterInput{Name: aws.String(policyParameter)}); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(DefaultPolicyMaxAge)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := p.rec.Pass(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("the pass with the policy parameter deleted: %v; want an error saying it does not exist", err)
	}
	if rep.Denied != 0 || rep.Revoked != 0 {
		t.Errorf("the pass with the policy parameter deleted: %+v, want nothing denied or revoked", rep)
	}
	if !hasUser(t, p.host, p.g.Username) {
		t.Errorf("%s lost %s", p.host.Info().InstanceID, p.g.Username)
	}
	if err := login(t, p.host, p.g, p.priv); err != nil {
		t.Errorf("login after the policy parameter was deleted: %v", err)
	}
	if got := p.record(t, p.g.ID); got.State != ledger.Active {
		t.Errorf("record: %s, want active", got.State)
	}
	if denied := p.deniedEvent(t); denied != nil {
		t.Errorf("a denial is on record: %+v", denied)
	}
}
