package server

import (
	"cmp"
	"strconv"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// requestView is a grant the access core just returned, as the API shows
// it: its sealed passwords included, since only this answer carries them.
func (s *Server) requestView(g *access.Grant, state ledger.State) *api.Request {
	v := &api.Request{
		ID: g.ID, State: string(state), Username: g.Username, Requester: g.Requester, RequesterKind: kindName(g.RequesterKind),
		Groups: g.Groups, Reason: g.Reason, Sudo: g.Sudo, Duration: duration(g.IssuedAt, g.ExpiresAt),
		IssuedAt: g.IssuedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC(),
		Certificate: g.Certificate, Serial: strconv.FormatUint(g.Serial, 10), PublicKey: g.PublicKey, CAPublicKey: g.CAPublicKey,
		CertificateAuthority: s.caName(g.CAPublicKey), SealedPasswords: g.SealedPasswords, Targets: []api.Target{},
		Approval: approvalView(g.Approval), BreakGlass: g.BreakGlass,
	}
	if r := g.Review; r != nil {
		v.Review = &api.Review{Due: r.Due.UTC(), By: r.By, Kind: r.Kind, Comment: r.Comment}
		if r.Done() {
			at := r.At.UTC()
			v.Review.At = &at
		}
	}
	if g.Extension != nil {
		v.Extension = &api.Extension{ExpiresAt: g.Extension.ExpiresAt.UTC(), Approval: *approvalView(&g.Extension.Approval)}
	}
	for _, t := range g.Targets {
		// A target nothing was done to yet (a request that waits) is in
		// the request's own state.
		status := cmp.Or(string(t.Status), targetStatus(state))
		v.Targets = append(v.Targets, api.Target{InstanceID: t.InstanceID, Platform: cmp.Or(t.Platform, access.Linux), Status: status, Address: t.Address, Detail: t.Detail})
	}
	return v
}

// recordView is a grant as the ledger holds it, for reads: no secret is in
// a record.
func (s *Server) recordView(r ledger.Grant) *api.Request {
	g := access.FromRecord(r)
	v := s.requestView(g, r.State)
	// A record's targets say more than a grant rebuilt from it: provisioning
	// and revoking are states of their own there.
	for i, t := range r.Targets {
		v.Targets[i].Status = targetStatus(t.State)
	}
	return v
}

func approvalView(a *ledger.Approval) *api.Approval {
	if a == nil {
		return nil
	}
	v := &api.Approval{Required: a.Required, Approvers: a.Approvers, Why: a.Why, Deadline: a.Deadline.UTC(), Denied: voteView(a.Denied)}
	for _, g := range a.Given {
		v.Given = append(v.Given, *voteView(&g))
	}
	return v
}

func voteView(v *ledger.Vote) *api.Vote {
	if v == nil {
		return nil
	}
	return &api.Vote{By: v.By, Kind: v.Kind, At: v.At.UTC(), Comment: v.Comment}
}

// targetStatus is a recorded target's state in the API's words.
func targetStatus(st ledger.State) string {
	switch st {
	case ledger.Active:
		return string(access.Active)
	case ledger.Failed:
		return string(access.Failed)
	case ledger.Revoked, ledger.Expired:
		return string(access.Revoked)
	}
	return string(st) // pending, provisioning, revoking, denied
}

func kindName(k policy.Kind) string { return string(cmp.Or(k, policy.Person)) }

func duration(from, to time.Time) string {
	d := to.Sub(from)
	if d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	if d%time.Minute == 0 {
		h, m := d/time.Hour, (d%time.Hour)/time.Minute
		if h == 0 {
			return strconv.FormatInt(int64(m), 10) + "m"
		}
		return strconv.FormatInt(int64(h), 10) + "h" + strconv.FormatInt(int64(m), 10) + "m"
	}
	return d.String()
}
