package server

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
	"github.com/passport-access/terraform-provider-passport/internal/targets"
)

// idempotencyTTL is how long a create's Idempotency-Key is remembered.
const idempotencyTTL = 24 * time.Hour

// createRequest asks for access for the caller. The service signs the
// caller's own key; it never makes or sees a private key.
func (s *Server) createRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	var in api.CreateRequest
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := s.newRequest(r.Context(), p, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// With an Idempotency-Key, the request's id is fixed before anything
	// happens, so that a retry (after a dropped connection, or to another
	// replica) finds the same request instead of granting twice.
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		id, existing, err := s.idempotent(r.Context(), p, key)
		switch {
		case err != nil:
			s.fail(w, r, err)
			return
		case existing != nil:
			w.Header().Set("Idempotent-Replayed", "true")
			s.write(w, http.StatusOK, s.recordView(*existing))
			return
		}
		req.ID = id
	}
	// The id is picked here, before the core records it, so that the
	// heartbeat can name it from the start.
	if req.ID == "" {
		req.ID = access.NewGrantID()
	}
	ctx, cancel := s.detached(r.Context())
	defer cancel()
	defer s.keepAlive(req.ID)()
	g, err := s.cfg.Access.Grant(ctx, req)
	if err != nil {
		var left *api.Request
		if g != nil {
			left = s.requestView(g, ledger.Revoking)
		}
		s.failWith(w, r, err, left)
		return
	}
	if g.Waiting() {
		// Recorded, and nothing touched a host: it waits for its approvers.
		s.write(w, http.StatusAccepted, s.requestView(g, ledger.Pending))
		return
	}
	s.write(w, http.StatusCreated, s.requestView(g, ledger.Active))
}

// keepAlive marks grant id as worked on by this replica every heartbeat,
// until the returned stop is called: while a long provision or revoke
// goes on, the grant must not look stuck to another replica's
// reconciler, and once this replica dies it must, soon.
func (s *Server) keepAlive(id string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.cfg.Ledger.Touch(ctx, id); err != nil && ctx.Err() == nil {
					s.cfg.Log.Warn("marking a grant as worked on", "grant", id, "error", err.Error())
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// detached is the context a call's work on hosts runs in: the caller's
// values, the service's own deadline, and no cancellation when the caller
// hangs up: a grant or revoke cut off half-way would be undone or left
// for the reconciler, for nothing.
func (s *Server) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.GrantTimeout)
}

// idempotent claims key for p, or finds the request an earlier call with
// it made. It returns the id to grant under, or the existing record.
func (s *Server) idempotent(ctx context.Context, p *principal, key string) (string, *ledger.Grant, error) {
	if len(key) > 128 || strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return "", nil, &apiError{code: api.CodeInvalid, field: "Idempotency-Key", msg: "the Idempotency-Key header must be 1 to 128 printable ASCII characters without spaces"}
	}
	entryKey := digest(string(p.Kind) + "\x00" + p.Name + "\x00" + key)
	id := access.NewGrantID()
	err := s.cfg.Ledger.PutEntry(ctx, ledger.Entry{Kind: idemEntry, Key: entryKey, Value: []byte(id), Expires: s.cfg.Now().Add(idempotencyTTL)})
	if err == nil {
		return id, nil, nil
	}
	if !errors.Is(err, ledger.ErrExists) {
		return "", nil, &apiError{code: api.CodeUnavailable, msg: "the service cannot reach its ledger; try again shortly", log: err}
	}
	e, err := s.cfg.Ledger.GetEntry(ctx, idemEntry, entryKey)
	if err != nil {
		return "", nil, &apiError{code: api.CodeUnavailable, msg: "the service cannot reach its ledger; try again shortly", log: err}
	}
	id = string(e.Value)
	rec, err := s.cfg.Ledger.Get(ctx, id)
	switch {
	case err == nil:
		return "", &rec, nil
	case errors.Is(err, ledger.ErrNotFound):
		// The first call has not recorded its request yet, or died before
		// it could: asking again under the same id is safe, since the
		// ledger records an id once and the loser touches no host.
		return id, nil, nil
	}
	return "", nil, &apiError{code: api.CodeUnavailable, msg: "the service cannot reach its ledger; try again shortly", log: err}
}

// newRequest checks a create call and builds the access core's request.
// The core checks every field again; what is checked here is what only
// the service knows (its CAs, tags to resolve, keys it needs).
func (s *Server) newRequest(ctx context.Context, p *principal, in api.CreateRequest) (access.Request, error) {
	req := access.Request{
		Reason: in.Reason, Sudo: in.Sudo, PublicKey: in.PublicKey, BreakGlass: in.BreakGlass,
		Requester: p.Name, RequesterKind: p.Kind, Groups: p.Groups,
	}
	if strings.TrimSpace(in.PublicKey) == "" {
		return req, invalidField("public_key", "public_key is required: the service signs your own key and never makes one; give the content of your id_ed25519.pub")
	}
	ca, _, err := s.caFor(in.CertificateAuthority)
	if err != nil {
		return req, err
	}
	req.CA = ca
	if in.Duration != "" {
		if req.Duration, err = parseDuration(in.Duration); err != nil {
			return req, err
		}
	}
	switch {
	case len(in.Targets) > 0 && len(in.Tags) > 0:
		return req, invalidField("targets", "give targets or tags, not both")
	case len(in.Tags) > 0:
		if req.Targets, err = s.targetsByTag(ctx, in.Tags); err != nil {
			return req, err
		}
	default:
		req.Targets = in.Targets
	}
	if in.PasswordKey != "" {
		if req.SealTo, err = parsePasswordKey(in.PasswordKey); err != nil {
			return req, err
		}
	}
	return req, nil
}

// targetsByTag finds the online Linux and Windows nodes carrying every tag.
func (s *Server) targetsByTag(ctx context.Context, tags map[string]string) ([]string, error) {
	if s.cfg.Instances == nil {
		return nil, invalidField("tags", "this service cannot look instances up by tag: name the targets")
	}
	found, err := s.cfg.Instances(ctx, targets.Filter{Tags: tags, PingStatus: "Online"})
	if err != nil {
		return nil, &apiError{code: api.CodeUnavailable, msg: "the instances could not be looked up in Systems Manager; try again shortly", log: err}
	}
	var ids []string
	for _, in := range found {
		if in.PlatformType == access.Linux || in.PlatformType == access.Windows {
			ids = append(ids, in.InstanceID)
		}
	}
	if len(ids) == 0 {
		return nil, invalidField("tags", "no online Linux or Windows instance carries every one of these tags")
	}
	return ids, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidField("duration", "duration %.40q is not a duration: write it like 45m, 2h or 1h30m", s)
	}
	if d <= 0 {
		return 0, invalidField("duration", "duration %s must be positive", s)
	}
	if err := access.CheckDuration(d); err != nil {
		return 0, err
	}
	return d, nil
}

// parsePasswordKey reads the caller's RSA key for Windows passwords:
// base64 of its PKIX DER form, 2048 to 8192 bits.
func parsePasswordKey(s string) (*rsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, invalidField("password_key", "password_key is not base64")
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, invalidField("password_key", "password_key is not a PKIX public key")
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, invalidField("password_key", "password_key must be an RSA key (Windows hosts seal with RSA-OAEP)")
	}
	if n := rk.N.BitLen(); n < 2048 || n > 8192 {
		return nil, invalidField("password_key", "password_key is %d bits: give 2048 to 8192 (3072 recommended)", n)
	}
	return rk, nil
}

// caFor is the CA a request names, or the default.
func (s *Server) caFor(name string) (*sshca.CA, string, error) {
	name = cmp.Or(name, s.cfg.DefaultCA)
	ca, ok := s.cfg.CAs[name]
	if !ok {
		names := make([]string, 0, len(s.cfg.CAs))
		for n := range s.cfg.CAs {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, "", invalidField("certificate_authority", "certificate_authority %.60q is not one of this service's: %s", name, strings.Join(names, ", "))
	}
	return ca, name, nil
}

// caByKey is the CA that signed a grant.
func (s *Server) caByKey(pub string) (*sshca.CA, error) {
	for _, ca := range s.cfg.CAs {
		if sshca.SameKey(ca.PublicKey(), pub) {
			return ca, nil
		}
	}
	return nil, &apiError{code: api.CodeConflict, msg: "the certificate authority that signed this request is no longer configured on the service: end it and ask again"}
}

func (s *Server) caName(pub string) string {
	for name, ca := range s.cfg.CAs {
		if sshca.SameKey(ca.PublicKey(), pub) {
			return name
		}
	}
	return ""
}

// load reads request id from the ledger and checks the caller may act on
// it: their own, or another's that policy lets them view (and end, for
// action End). A request the caller may not see does not exist for them.
func (s *Server) load(ctx context.Context, p *principal, id string, action policy.Action) (*access.Grant, ledger.Grant, error) {
	if !access.ValidGrantID(id) {
		return nil, ledger.Grant{}, &apiError{code: api.CodeNotFound, field: "id", msg: fmt.Sprintf("%.40q is not a request id (ar- and 16 hex digits)", id)}
	}
	g, rec, err := s.cfg.Access.Load(ctx, id)
	if err != nil {
		return nil, rec, err
	}
	if owns(p, rec) {
		return g, rec, nil
	}
	// Someone else's request: what policy lets the caller do with it. One
	// who may end it may do so without seeing everyone's (on-call ending
	// production access); one who may neither does not learn it exists.
	if action == policy.End {
		err := s.permits(ctx, p, rec, policy.End)
		switch {
		case err == nil:
			return g, rec, nil
		case access.ClassOf(err) != access.Denied:
			return nil, rec, err
		}
		if s.permits(ctx, p, rec, policy.View) == nil {
			return nil, rec, err
		}
		return nil, rec, notYours(id)
	}
	if err := s.permits(ctx, p, rec, policy.View); err != nil {
		// An approver reads what waits for them.
		if access.ClassOf(err) == access.Denied && action == policy.View && waits(rec) && s.permits(ctx, p, rec, policy.Approve) == nil {
			return g, rec, nil
		}
		if access.ClassOf(err) == access.Denied {
			return nil, rec, notYours(id)
		}
		return nil, rec, err
	}
	if action != policy.View {
		return nil, rec, &apiError{code: api.CodeDenied, msg: "only the requester may change request " + id}
	}
	return g, rec, nil
}

// loadToDecide loads request id for p to approve, deny or review: their
// own (which the access core refuses, saying why), or another's that
// policy lets them approve. One who may neither approve nor view it does
// not learn it exists.
func (s *Server) loadToDecide(ctx context.Context, p *principal, id string) (ledger.Grant, error) {
	if !access.ValidGrantID(id) {
		return ledger.Grant{}, &apiError{code: api.CodeNotFound, field: "id", msg: fmt.Sprintf("%.40q is not a request id (ar- and 16 hex digits)", id)}
	}
	_, rec, err := s.cfg.Access.Load(ctx, id)
	if err != nil || owns(p, rec) {
		return rec, err
	}
	err = s.permits(ctx, p, rec, policy.Approve)
	if access.ClassOf(err) == access.Denied && s.permits(ctx, p, rec, policy.View) != nil {
		return rec, notYours(id)
	}
	return rec, err
}

func notYours(id string) error {
	return &apiError{code: api.CodeNotFound, field: "id", msg: "there is no access request " + id + " of yours: check the id (GET /v1/requests lists yours)"}
}

func owns(p *principal, rec ledger.Grant) bool {
	return p.Name == rec.Requester && p.Kind == cmp.Or(policy.Kind(rec.RequesterKind), policy.Person)
}

// permits asks policy whether p may take action on someone else's request
// rec: once per target, as for access.
func (s *Server) permits(ctx context.Context, p *principal, rec ledger.Grant, action policy.Action) error {
	pol, err := s.cfg.Policy(ctx)
	if err != nil {
		return &apiError{code: api.CodeUnavailable, msg: "the administrators' policy could not be read; try again shortly", log: err}
	}
	req := policy.Request{
		Subject: p.Name, Kind: p.Kind, Groups: p.Groups, Action: action, Requester: rec.Requester,
		Duration: rec.ExpiresAt.Sub(rec.IssuedAt), Reason: rec.Reason, Sudo: rec.Sudo, BreakGlass: rec.BreakGlass,
	}
	for _, t := range rec.Targets {
		req.Targets = append(req.Targets, policy.Instance{ID: t.InstanceID, Platform: cmp.Or(t.Platform, access.Linux)})
	}
	err = (&policy.Gate{Policy: pol, Tags: tagsIn(ctx, s.cfg.Tags)}).Authorize(ctx, req)
	var denied *policy.DeniedError
	if err != nil && !errors.As(err, &denied) {
		return &apiError{code: api.CodeUnavailable, msg: "the request could not be checked against policy (its targets' tags could not be read); try again shortly", log: err}
	}
	return err
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	_, rec, err := s.load(r.Context(), p, r.PathValue("id"), policy.View)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := s.recordView(rec)
	s.callerMay(r.Context(), p, rec, v)
	s.sealedFor(r, p, rec, v)
	s.write(w, http.StatusOK, v)
}

// listRequests lists the caller's requests; with all=true, every request
// policy lets them view. state picks one state; by default the open ones.
func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	all := q.Get("all") == "true"
	states := ledger.OpenStates()
	if st := q.Get("state"); st != "" && st != "open" {
		if !slices.Contains(ledger.States(), ledger.State(st)) {
			s.fail(w, r, invalidField("state", "state %.30q is not open or one of %s", st, strings.Join(stateNames(), ", ")))
			return
		}
		states = []ledger.State{ledger.State(st)}
	}
	out := api.RequestList{Requests: []api.Request{}}
	ctx := withTagMemo(r.Context(), s.cfg.Tags)
	list := func(st ledger.State) ([]ledger.Grant, error) { return s.cfg.Ledger.List(ctx, st) }
	if q.Get("unreviewed") == "true" {
		// Break-glass grants that owe a review, whatever their state.
		states = []ledger.State{""}
		list = func(ledger.State) ([]ledger.Grant, error) { return s.cfg.Ledger.Unreviewed(ctx) }
	}
	for _, st := range states {
		recs, err := list(st)
		if err != nil {
			s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its ledger; try again shortly", log: err})
			return
		}
		for _, rec := range recs {
			switch {
			case owns(p, rec):
			case !all:
				continue
			case s.permits(ctx, p, rec, policy.View) == nil:
			case (waits(rec) || rec.BreakGlass && !rec.Review.Done()) && s.permits(ctx, p, rec, policy.Approve) == nil:
				// An approver sees what waits for them, or owes a review.
			default:
				continue
			}
			v := s.recordView(rec)
			s.callerMay(ctx, p, rec, v)
			out.Requests = append(out.Requests, *v)
		}
	}
	slices.SortFunc(out.Requests, func(a, b api.Request) int { return b.IssuedAt.Compare(a.IssuedAt) })
	s.write(w, http.StatusOK, out)
}

// callerMay says in v what p may do with rec, for a client to offer
// exactly that (the portal's buttons).
func (s *Server) callerMay(ctx context.Context, p *principal, rec ledger.Grant, v *api.Request) {
	v.CallerMayDecide = s.mayDecide(ctx, p, rec)
	v.CallerMayEnd = !rec.State.Closed() && (owns(p, rec) || s.permits(ctx, p, rec, policy.End) == nil)
}

// mayDecide reports whether p may decide on what rec waits for: approve
// or deny it, or review a break-glass grant, as policy's approve action
// lets them; never on their own. The portal offers the decision where
// this says so.
func (s *Server) mayDecide(ctx context.Context, p *principal, rec ledger.Grant) bool {
	if owns(p, rec) || !waits(rec) && !(rec.BreakGlass && !rec.Review.Done()) {
		return false
	}
	return s.permits(ctx, p, rec, policy.Approve) == nil
}

// waits reports whether a request, or a longer window of it, waits for
// approval.
func waits(rec ledger.Grant) bool {
	return rec.State == ledger.Pending || rec.State == ledger.Active && rec.Extension != nil
}

func stateNames() []string {
	var names []string
	for _, st := range ledger.States() {
		names = append(names, string(st))
	}
	return names
}

// extendRequest moves the end of the caller's own request's window.
func (s *Server) extendRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	var in api.ExtendRequest
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := parseDuration(in.Duration)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	g, rec, ca, err := s.openForChange(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.detached(r.Context())
	defer cancel()
	defer s.keepAlive(g.ID)()
	next, err := s.cfg.Access.Extend(ctx, p.Name, g, ca, d)
	if err != nil {
		var left *api.Request
		if next != nil {
			left = s.requestView(next, rec.State)
		}
		s.failWith(w, r, err, left)
		return
	}
	if next.Extension != nil && !next.Extension.Approval.Done() {
		// The longer window waits for approval; the current one stands.
		s.write(w, http.StatusAccepted, s.requestView(next, ledger.Active))
		return
	}
	s.write(w, http.StatusOK, s.requestView(next, ledger.Active))
}

// setTargets makes a list the hosts of the caller's own request.
func (s *Server) setTargets(w http.ResponseWriter, r *http.Request, p *principal) {
	var in api.TargetsRequest
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	g, rec, ca, err := s.openForChange(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if in.PasswordKey != "" {
		if g.SealTo, err = parsePasswordKey(in.PasswordKey); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	ctx, cancel := s.detached(r.Context())
	defer cancel()
	defer s.keepAlive(g.ID)()
	next, err := s.cfg.Access.SetTargets(ctx, p.Name, g, ca, in.Targets)
	if err != nil {
		var left *api.Request
		if next != nil {
			left = s.requestView(next, rec.State)
		}
		s.failWith(w, r, err, left)
		return
	}
	s.write(w, http.StatusOK, s.requestView(next, ledger.Active))
}

// openForChange loads the caller's own open request and the CA that
// signed it. Only the requester extends or changes a request: an
// administrator may end it, not make it larger.
func (s *Server) openForChange(ctx context.Context, p *principal, id string) (*access.Grant, ledger.Grant, *sshca.CA, error) {
	g, rec, err := s.load(ctx, p, id, policy.View)
	if err != nil {
		return nil, rec, nil, err
	}
	if !owns(p, rec) {
		return nil, rec, nil, &apiError{code: api.CodeDenied, msg: "only the requester may change request " + id + "; you may end it if policy allows"}
	}
	if rec.State != ledger.Active {
		return nil, rec, nil, &apiError{code: api.CodeConflict, msg: fmt.Sprintf("request %s is %s: only an active request changes; make a new one", id, rec.State)}
	}
	ca, err := s.caByKey(rec.CAPublicKey)
	return g, rec, ca, err
}

// endRequest revokes a request now: the caller's own, or another's that
// policy lets them end. Ending an ended request answers with it as it is.
func (s *Server) endRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	g, rec, err := s.load(r.Context(), p, r.PathValue("id"), policy.End)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rec.State.Closed() {
		s.write(w, http.StatusOK, s.recordView(rec))
		return
	}
	if rec.State == ledger.Pending {
		// Nothing is on a host yet: the request ends unapproved.
		if _, err := s.cfg.Access.EndWaiting(r.Context(), p.Name, rec.ID, false); err != nil {
			s.fail(w, r, err)
			return
		}
		s.writeRecord(w, r, rec.ID, http.StatusOK)
		return
	}
	ctx, cancel := s.detached(r.Context())
	defer cancel()
	stop := s.keepAlive(g.ID)
	revokeErr := s.cfg.Access.Revoke(ctx, p.Name, g)
	stop()
	now, err := s.cfg.Ledger.Get(ctx, g.ID)
	view := s.requestView(g, ledger.Revoking)
	if err == nil {
		view = s.recordView(now)
	}
	if revokeErr != nil {
		s.failWith(w, r, revokeErr, view)
		return
	}
	s.write(w, http.StatusOK, view)
}

// checkRequest asks the hosts whether the request still stands.
func (s *Server) checkRequest(w http.ResponseWriter, r *http.Request, p *principal) {
	g, _, err := s.load(r.Context(), p, r.PathValue("id"), policy.View)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.detached(r.Context())
	defer cancel()
	h, err := s.cfg.Access.Check(ctx, g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.write(w, http.StatusOK, api.Health{Expired: h.Expired, Missing: h.Missing, Unreachable: h.Unreachable})
}
