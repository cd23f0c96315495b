package provider

import (
	"context"
	"errors"
	"sync"

	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// requestGate answers, for one provider run, who is asking and whether
// policy lets them. Both are looked up on first use only: grants,
// extensions and added targets need them, while a destroy must work even
// when no policy can be read or the person's session has expired.
type requestGate struct {
	data *providerData

	whoOnce sync.Once
	subject string
	groups  []string
	whoErr  error

	gateOnce sync.Once
	gate     *policy.Gate
	gateErr  error
}

// who is the person behind this run: the SAML subject and groups when the
// provider has a saml block, else the ARN of the AWS credentials in use,
// with no groups. PASSPORT_SAML_METADATA alone only says where the IdP's
// metadata is (the lab exports it for `passport login`); requiring SAML is
// the configuration's decision, made with the block.
func (g *requestGate) who(ctx context.Context) (string, []string, error) {
	g.whoOnce.Do(func() {
		if g.data.samlRequired {
			claims, err := g.data.identity.Claims(ctx)
			if err != nil {
				g.whoErr = err
				return
			}
			g.subject, g.groups = claims.Subject, claims.Groups
			return
		}
		g.subject, g.whoErr = awsidentity.Caller(ctx, g.data.aws.STS)
	})
	return g.subject, g.groups, g.whoErr
}

// Authorize implements access.Authorizer with the administrators' policy,
// the instances' EC2 tags and the person's groups.
func (g *requestGate) Authorize(ctx context.Context, req policy.Request) error {
	g.gateOnce.Do(func() {
		_, groups, err := g.who(ctx)
		if err != nil {
			g.gateErr = err
			return
		}
		p, err := policy.Load(ctx, g.data.policySource, g.data.aws.SSM)
		if err != nil {
			g.gateErr = err
			return
		}
		g.gate = &policy.Gate{Policy: p, Tags: policy.EC2Tags{Client: g.data.aws.EC2}, Groups: groups}
	})
	if g.gateErr != nil {
		return g.gateErr
	}
	return g.gate.Authorize(ctx, req)
}

// Recording implements access.RecordingPolicy with the policy Authorize
// read (Authorize always comes first).
func (g *requestGate) Recording(ctx context.Context, req policy.Request) ([]policy.RecordRule, error) {
	if g.gate == nil {
		return nil, errors.Join(errors.New("policy was not read before provisioning"), g.gateErr)
	}
	return g.gate.Recording(ctx, req)
}
