package access

import (
	"context"
	"fmt"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// RecordingPolicy says where sessions must be recorded (policy's
// Passport::Action::"record"). An Authorizer that also implements it
// (policy.Gate does) is asked about the Linux targets of every provision.
type RecordingPolicy interface {
	Recording(ctx context.Context, req policy.Request) ([]policy.RecordRule, error)
}

// recordingRules asks policy, when it can say, where g's sessions must be
// recorded among targets: Windows targets are never asked. A policy that
// cannot answer fails the provision before any host is touched: a grant
// that may need a recorder must not go out without knowing.
func (s *Service) recordingRules(ctx context.Context, g *Grant, targets []string) (map[string]policy.RecordRule, error) {
	rp, ok := s.authz.(RecordingPolicy)
	if !ok {
		return nil, nil
	}
	req := policy.Request{Subject: g.Requester, Kind: g.RequesterKind, Groups: g.Groups, Duration: g.ExpiresAt.Sub(g.IssuedAt),
		Reason: g.Reason, Sudo: g.Sudo, BreakGlass: g.BreakGlass}
	for _, id := range targets {
		if !isWindows(g.platformOf(id)) {
			req.Targets = append(req.Targets, policy.Instance{ID: id, Platform: Linux})
		}
	}
	if len(req.Targets) == 0 {
		return nil, nil
	}
	rules, err := rp.Recording(ctx, req)
	if err != nil {
		return nil, classed(Unavailable, fmt.Errorf("policy could not say where sessions must be recorded, so no host was touched: %w", err))
	}
	out := make(map[string]policy.RecordRule, len(rules))
	for _, r := range rules {
		out[r.ID] = r
	}
	return out, nil
}

// provisionRecorded is provision with policy's recording rules: the
// targets where recording is required and the grant must not stand
// without it get a provision program that refuses a host that cannot
// record (hostscript.ExitRecording, nothing changed); the others the
// usual one. A target where policy requires recording but lets the grant
// stand without it gets a not-recorded event when its host cannot record.
func (s *Service) provisionRecorded(ctx context.Context, g *Grant, targets []string) ([]hostRun, error) {
	rules, err := s.recordingRules(ctx, g, targets)
	if err != nil {
		return nil, err
	}
	var strict, rest []string
	for _, id := range targets {
		if r := rules[id]; r.Required && !r.FailOpen {
			strict = append(strict, id)
		} else {
			rest = append(rest, id)
		}
	}
	byID := make(map[string]hostRun, len(targets))
	for _, group := range []struct {
		ids     []string
		require bool
	}{{rest, false}, {strict, true}} {
		if len(group.ids) == 0 {
			continue
		}
		runs, err := s.provisionWith(ctx, g, group.ids, group.require)
		if err != nil {
			return nil, err
		}
		for _, h := range runs {
			byID[h.id] = h
		}
	}
	runs := make([]hostRun, len(targets))
	for i, id := range targets {
		runs[i] = byID[id]
		h := runs[i]
		if r := rules[id]; h.ok && r.Required && r.FailOpen && h.result.Fields["recording"] == "off" {
			if err := s.event(ctx, g, ledger.ActionRecordingNotRecorded, id,
				"sessions on this host are NOT recorded: "+r.Why+" lets the grant stand where the host cannot record (no sudo, or sshd's PermitUserEnvironment); fix the host"); err != nil {
				return nil, err
			}
		}
		if !h.ok && h.code == hostscript.ExitRecording {
			runs[i].why = fmt.Sprintf("%s: policy requires recording here (%s) and the host cannot record sessions (%s); nothing was changed there", id, rules[id].Why, h.why)
		}
	}
	return runs, nil
}
