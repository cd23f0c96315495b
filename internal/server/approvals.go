package server

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// sealedEntry keeps the sealed Windows passwords of a request granted by
// its last approval, for its requester: they were provisioned in the
// approver's call, whose answer must not carry them.
const sealedEntry = "sealed-passwords"

func (p *principal) approver() access.Approver {
	return access.Approver{Name: p.Name, Kind: p.Kind, Groups: p.Groups}
}

// approveRequest approves a request that waits for approval (or its
// longer window). The last required approval grants it in this call.
func (s *Server) approveRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	var in api.Decision
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	rec, err := s.loadToDecide(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ca, err := s.caByKey(rec.CAPublicKey)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.detached(r.Context())
	defer cancel()
	defer s.keepAlive(rec.ID)()
	g, err := s.cfg.Access.Approve(ctx, p.approver(), rec.ID, in.Comment, ca)
	if g != nil && len(g.SealedPasswords) > 0 {
		err = errors.Join(err, s.keepSealed(r, g))
	}
	if err != nil {
		var left *api.Request
		if g != nil && !g.Waiting() {
			left = s.requestView(g, ledger.Revoking)
			left.SealedPasswords = nil
		}
		s.failWith(w, r, err, left)
		return
	}
	s.writeRecord(w, r, rec.ID, http.StatusOK)
}

// denyRequest ends a request that waits for approval (or drops its
// longer window), with the approver's comment.
func (s *Server) denyRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	s.decideComment(w, r, p, func(ctx context.Context, id, comment string) error {
		_, err := s.cfg.Access.Deny(ctx, p.approver(), id, comment)
		return err
	})
}

// reviewRequest records the caller's review of a break-glass request,
// open or closed.
func (s *Server) reviewRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	s.decideComment(w, r, p, func(ctx context.Context, id, comment string) error {
		_, err := s.cfg.Access.Review(ctx, p.approver(), id, comment)
		return err
	})
}

// decideComment reads a decision's comment, loads the request the path
// names for the caller to decide on, applies act, and answers the request
// as it now stands.
func (s *Server) decideComment(w http.ResponseWriter, r *http.Request, p *principal, act func(ctx context.Context, id, comment string) error) {
	var in api.Decision
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	rec, err := s.loadToDecide(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := act(r.Context(), rec.ID, in.Comment); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeRecord(w, r, rec.ID, http.StatusOK)
}

// keepSealed keeps g's sealed passwords for its requester until its
// window ends.
func (s *Server) keepSealed(r *http.Request, g *access.Grant) error {
	b, _ := json.Marshal(g.SealedPasswords) // a map of strings always marshals
	err := s.cfg.Ledger.PutEntry(r.Context(), ledger.Entry{Kind: sealedEntry, Key: g.ID, Value: b, Expires: g.ExpiresAt})
	if err != nil {
		return &apiError{code: api.CodeUnavailable, msg: "the Windows passwords of request " + g.ID + " could not be kept for its requester: they must end it and ask again", log: err}
	}
	return nil
}

// sealedFor adds the sealed passwords an approval provisioned to v, the
// requester's own view of their active request.
func (s *Server) sealedFor(r *http.Request, p *principal, rec ledger.Grant, v *api.Request) {
	if !owns(p, rec) || rec.State != ledger.Active {
		return
	}
	e, err := s.cfg.Ledger.GetEntry(r.Context(), sealedEntry, rec.ID)
	if err != nil || !s.cfg.Now().Before(e.Expires) {
		return
	}
	var sealed map[string]string
	if json.Unmarshal(e.Value, &sealed) == nil {
		v.SealedPasswords = maps.Clone(sealed)
	}
}

// writeRecord answers with request id as the ledger now holds it.
func (s *Server) writeRecord(w http.ResponseWriter, r *http.Request, id string, status int) {
	rec, err := s.cfg.Ledger.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the request was decided, but the service cannot read it back from its ledger; read it again shortly", log: err})
		return
	}
	s.write(w, status, s.recordView(rec))
}
