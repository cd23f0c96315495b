package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// Authorizer decides whether policy lets a request reach its targets.
// *policy.Gate is one: it adds the session's groups and the targets' tags.
// A refusal is an error naming each refused target and why.
type Authorizer interface {
	Authorize(ctx context.Context, req policy.Request) error
}

// principal is who a request is for, as policy sees them.
type principal struct {
	name   string
	kind   policy.Kind
	groups []string
}

func (g *Grant) principal() principal { return principal{g.Requester, g.RequesterKind, g.Groups} }

// authorize asks s's Authorizer about targets of a request by who (in
// groups; none lets the Authorizer use the session's) for a window of
// length d. With no targets nothing would reach a host, so there is nothing
// to ask.
//
// Where policy grants only with approval, the answer is that approval
// when s holds requests for approval (Config.Approvals), and otherwise a
// Denied error: only the Passport service can hold a request until people
// approve it, since anywhere else the requester could go around them.
func (s *Service) authorize(ctx context.Context, who principal, reason string, sudo, breakGlass bool, d time.Duration, targets []string, platform func(id string) string) (*policy.ApprovalError, error) {
	if s.authz == nil || len(targets) == 0 {
		return nil, nil
	}
	req := policy.Request{Subject: who.name, Kind: who.kind, Groups: who.groups, Duration: d, Reason: reason, Sudo: sudo, BreakGlass: breakGlass}
	for _, id := range targets {
		req.Targets = append(req.Targets, policy.Instance{ID: id, Platform: platform(id)})
	}
	err := s.authz.Authorize(ctx, req)
	var denied *policy.DeniedError
	var approval *policy.ApprovalError
	switch {
	case err == nil || errors.As(err, &denied):
		return nil, err
	case errors.As(err, &approval) && s.approvals != nil:
		return approval, nil
	case errors.As(err, &approval):
		return nil, &Error{Class: Denied, Err: fmt.Errorf("%w\nApprovals are given only through the Passport service: ask there (the provider's server setting, or passport request create with PASSPORT_SERVER set)", err)}
	}
	return nil, classed(Unavailable, fmt.Errorf("the request could not be checked against policy, so no host was touched: %w", err))
}

// platformIn reads targets' platforms from an inventory.
func platformIn(inv map[string]fleet.Target) func(string) string {
	return func(id string) string { return inv[id].PlatformType }
}
