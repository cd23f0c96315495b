package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// DefaultPolicyMaxAge is how long PolicyCheck reuses a policy it read: a
// pass over many live grants reads it once, and a change reaches the next
// pass.
const DefaultPolicyMaxAge = 15 * time.Second

// PolicyCheck is the Authorizer that asks the administrators' Cedar policy
// again about a live grant, as the provider asked when the grant was made:
// the same requester and groups (as the ledger recorded them), reason, sudo
// and whole window, on each target that may still hold the user, with the
// targets' current tags.
//
// A policy that cannot be read, or whose source has vanished, revokes
// nothing: a deleted parameter is far more often an accident than a wish
// to end everyone's access. To end all access, publish a policy that
// forbids it.
type PolicyCheck struct {
	// Load reads the current policy, as policy.Load does from the
	// administrators' source.
	Load func(ctx context.Context) (*policy.Policy, error)
	// Tags looks up the targets' tags; nil means they have none.
	Tags policy.TagSource
	// Now is the clock MaxAge runs on; time.Now when nil.
	Now func() time.Time
	// MaxAge is how long a read policy is reused; DefaultPolicyMaxAge when
	// zero.
	MaxAge time.Duration

	mu     sync.Mutex
	cached *policy.Policy
	readAt time.Time
}

var _ Authorizer = (*PolicyCheck)(nil)

// Permits implements Authorizer.
func (c *PolicyCheck) Permits(ctx context.Context, g ledger.Grant) (bool, string, error) {
	p, err := c.policy(ctx)
	if err != nil {
		return false, "", err
	}
	req := policy.Request{
		Subject:  g.Requester,
		Kind:     policy.Kind(g.RequesterKind),
		Groups:   g.Groups,
		Duration: g.ExpiresAt.Sub(g.IssuedAt),
		Reason:   g.Reason,
		Sudo:     g.Sudo,
		// A break-glass grant was asked as one, and is judged as one.
		BreakGlass: g.BreakGlass,
	}
	for _, t := range g.Targets {
		if !t.State.Closed() {
			req.Targets = append(req.Targets, policy.Instance{ID: t.InstanceID, Platform: cmp.Or(t.Platform, "Linux")})
		}
	}
	if len(req.Targets) == 0 {
		return true, "", nil
	}
	d, err := (&policy.Gate{Policy: p, Tags: c.Tags}).Decide(ctx, req)
	if err != nil {
		return false, "", fmt.Errorf("checking grant %s against policy: %w", g.ID, err)
	}
	switch {
	case d.Outcome() == policy.Grant:
		return true, "", nil
	case d.Outcome() == policy.NeedsApproval && g.Approval.Done() && len(g.Approval.Given) >= d.Approvals():
		// Granted with the approvals policy asks for still.
		return true, "", nil
	case d.Outcome() == policy.NeedsApproval:
		given := 0
		if g.Approval != nil {
			given = len(g.Approval.Given)
		}
		return false, fmt.Sprintf("policy now grants it only with %d approvals, and it had %d: %s", d.Approvals(), given, strings.Join(whyNot(d), "; ")), nil
	}
	return false, "policy no longer permits it: " + strings.Join(whyNot(d), "; "), nil
}

// whyNot lists the targets policy does not grant at once, and why.
func whyNot(d policy.Decision) []string {
	var why []string
	for _, t := range d.Targets {
		if !t.Allowed {
			why = append(why, t.ID+": "+t.Why)
		}
	}
	return why
}

// Ready reads the policy now, so that a reconciler whose policy source
// cannot be read stops at start with the reason, and its first pass reuses
// what was read. A source that does not exist is not an error here: passes
// report it, and revoke nothing, until one is published.
func (c *PolicyCheck) Ready(ctx context.Context) error {
	_, err := c.read(ctx)
	return err
}

// Current is the policy as last read, read again when it is older than
// MaxAge: what the Passport service decides new requests with, so that
// its grants and its reconciler see the same policy.
func (c *PolicyCheck) Current(ctx context.Context) (*policy.Policy, error) { return c.read(ctx) }

// policy is the current policy, when there is one to decide with.
func (c *PolicyCheck) policy(ctx context.Context) (*policy.Policy, error) {
	p, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	if why := p.Missing(); why != "" {
		return nil, fmt.Errorf("there is no policy to check live grants against (%s); none is revoked for it until one is published", why)
	}
	return p, nil
}

// read returns the policy read within MaxAge, or reads it again.
func (c *PolicyCheck) read(ctx context.Context) (*policy.Policy, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && now().Sub(c.readAt) < cmp.Or(c.MaxAge, DefaultPolicyMaxAge) {
		return c.cached, nil
	}
	p, err := c.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the policy: %w", err)
	}
	c.cached, c.readAt = p, now()
	return p, nil
}
