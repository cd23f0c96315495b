package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/targets"
)

// listTargets lists managed instances: tag=K=V (repeatable), platform and
// ping_status filter, as the provider's passport_targets does. Any signed
// in caller may list; whether they may reach an instance is policy's
// answer to a request.
func (s *Server) listTargets(w http.ResponseWriter, r *http.Request, _ *principal) {
	if s.cfg.Instances == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this service does not list instances"})
		return
	}
	q := r.URL.Query()
	f := targets.Filter{Platform: q.Get("platform"), PingStatus: q.Get("ping_status")}
	if f.Platform != "" && !slices.Contains(targets.Platforms, f.Platform) {
		s.fail(w, r, invalidField("platform", "platform %.30q is not one of %s", f.Platform, strings.Join(targets.Platforms, ", ")))
		return
	}
	if f.PingStatus != "" && !slices.Contains(targets.PingStatuses, f.PingStatus) {
		s.fail(w, r, invalidField("ping_status", "ping_status %.30q is not one of %s", f.PingStatus, strings.Join(targets.PingStatuses, ", ")))
		return
	}
	for _, t := range q["tag"] {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" || len(k) > 128 || len(v) > 256 {
			s.fail(w, r, invalidField("tag", "tag %.60q must be key=value (a key of 1 to 128 characters, a value of at most 256)", t))
			return
		}
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		f.Tags[k] = v
	}
	found, err := s.cfg.Instances(r.Context(), f)
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the instances could not be listed from Systems Manager; try again shortly", log: err})
		return
	}
	out := api.InstanceList{Instances: []api.Instance{}}
	for _, in := range found {
		out.Instances = append(out.Instances, api.Instance{InstanceID: in.InstanceID, ComputerName: in.ComputerName, Address: in.IPAddress,
			Platform: in.PlatformType, PlatformName: in.PlatformName, PingStatus: in.PingStatus})
	}
	s.write(w, http.StatusOK, out)
}

// SessionManager opens, resumes and ends Session Manager sessions with the
// service's own AWS identity (ssm:StartSession, ResumeSession,
// TerminateSession), so that requesters need none.
type SessionManager interface {
	Start(ctx context.Context, target, document string, parameters map[string][]string) (api.Session, error)
	Resume(ctx context.Context, sessionID string) (api.Session, error)
	Terminate(ctx context.Context, sessionID string) error
}

// Session Manager documents for tunnels.
const (
	sshDocument  = "AWS-StartSSHSession"
	portDocument = "AWS-StartPortForwardingSession"
)

// sessionOwner is who opened a session, kept in the ledger so that only
// they may resume or end it, on any replica.
type sessionOwner struct {
	Name    string      `json:"name"`
	Kind    policy.Kind `json:"kind"`
	GrantID string      `json:"grant_id"`
	Target  string      `json:"target"`
}

const sessionEntry = "session"

// startSession opens a tunnel to a target of the caller's own active
// request: SSH to port 22 on Linux, or a port (3389 for RDP on Windows).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.cfg.Sessions == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this service does not open sessions: connect with your own AWS credentials"})
		return
	}
	var in api.SessionRequest
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	_, rec, err := s.load(r.Context(), p, r.PathValue("id"), policy.View)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !owns(p, rec) {
		s.fail(w, r, &apiError{code: api.CodeDenied, msg: "only the requester connects through request " + rec.ID})
		return
	}
	if rec.State != ledger.Active || !s.cfg.Now().Before(rec.ExpiresAt) {
		s.fail(w, r, &apiError{code: api.CodeConflict, msg: fmt.Sprintf("request %s is not active (%s, window ends %s): nothing to connect to", rec.ID, rec.State, rec.ExpiresAt.UTC().Format(time.RFC3339))})
		return
	}
	i := slices.IndexFunc(rec.Targets, func(t ledger.Target) bool { return t.InstanceID == in.Target })
	if i < 0 || rec.Targets[i].State != ledger.Active {
		s.fail(w, r, invalidField("target", "%.40q is not an active target of request %s", in.Target, rec.ID))
		return
	}
	windows := rec.Targets[i].Platform == access.Windows
	var doc string
	port := in.Port
	switch in.Kind {
	case "ssh":
		if windows {
			s.fail(w, r, invalidField("kind", "%s is a Windows target: use kind port with port 3389 (passport rdp)", in.Target))
			return
		}
		doc, port = sshDocument, cmpOr(port, 22)
	case "port":
		doc = portDocument
	default:
		s.fail(w, r, invalidField("kind", "kind %.20q must be ssh or port", in.Kind))
		return
	}
	if port < 1 || port > 65535 {
		s.fail(w, r, invalidField("port", "port %d must be 1 to 65535", port))
		return
	}
	sess, err := s.cfg.Sessions.Start(r.Context(), in.Target, doc, map[string][]string{"portNumber": {strconv.Itoa(port)}})
	var offline *ssmtypes.TargetNotConnected
	if errors.As(err, &offline) {
		// The one refusal a requester can act on: the host, not the call.
		s.fail(w, r, &apiError{code: api.CodeUnavailable, field: "target", msg: in.Target + " is offline: Session Manager cannot reach its SSM agent; check that the instance is running and its agent is connected, then try again"})
		return
	}
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "Session Manager would not open a session to " + in.Target + "; try again shortly", log: err})
		return
	}
	owner, _ := json.Marshal(sessionOwner{Name: p.Name, Kind: p.Kind, GrantID: rec.ID, Target: in.Target})
	detail := fmt.Sprintf("session %s through %s to port %d", sess.SessionID, doc, port)
	err = errors.Join(
		s.cfg.Ledger.PutEntry(r.Context(), ledger.Entry{Kind: sessionEntry, Key: sess.SessionID, Value: owner, Expires: rec.ExpiresAt.Add(time.Hour)}),
		appendErr(s.cfg.Ledger.Append(r.Context(), ledger.Event{Actor: p.Name, Action: ledger.ActionConnected, GrantID: rec.ID, Target: in.Target, Subject: rec.Requester, Detail: detail})))
	if err != nil {
		// A connection the trail cannot show is not handed out.
		s.cfg.Sessions.Terminate(context.WithoutCancel(r.Context()), sess.SessionID)
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the connection could not be recorded, so it was closed again; try again", log: err})
		return
	}
	s.write(w, http.StatusOK, sess)
}

func appendErr(_ ledger.Event, err error) error { return err }

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// sessionOf loads a session the caller opened, for resume and end.
func (s *Server) sessionOf(ctx context.Context, p *principal, id string) (sessionOwner, error) {
	var o sessionOwner
	if len(id) == 0 || len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return o, &apiError{code: api.CodeNotFound, field: "session", msg: "that is not a session id"}
	}
	e, err := s.cfg.Ledger.GetEntry(ctx, sessionEntry, id)
	if err == nil {
		err = json.Unmarshal(e.Value, &o)
	}
	if errors.Is(err, ledger.ErrNotFound) || err == nil && (o.Name != p.Name || o.Kind != p.Kind) {
		return o, &apiError{code: api.CodeNotFound, field: "session", msg: "there is no session " + id + " of yours"}
	}
	if err != nil {
		return o, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its ledger; try again shortly", log: err}
	}
	return o, nil
}

// resumeSession reconnects a session the caller opened whose websocket
// dropped, while its request is still active.
func (s *Server) resumeSession(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.cfg.Sessions == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this service does not open sessions"})
		return
	}
	o, err := s.sessionOf(r.Context(), p, r.PathValue("sid"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rec, err := s.cfg.Ledger.Get(r.Context(), o.GrantID)
	if err != nil || rec.State != ledger.Active || !s.cfg.Now().Before(rec.ExpiresAt) {
		s.fail(w, r, &apiError{code: api.CodeConflict, msg: "request " + o.GrantID + " is no longer active: the session cannot resume"})
		return
	}
	sess, err := s.cfg.Sessions.Resume(r.Context(), r.PathValue("sid"))
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "Session Manager would not resume the session; open a new one", log: err})
		return
	}
	s.write(w, http.StatusOK, sess)
}

// endSession terminates a session the caller opened.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.cfg.Sessions == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this service does not open sessions"})
		return
	}
	if _, err := s.sessionOf(r.Context(), p, r.PathValue("sid")); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Sessions.Terminate(r.Context(), r.PathValue("sid")); err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "Session Manager would not end the session; it ends with the request in any case", log: err})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxNewest bounds the newest parameter of the audit trail.
const maxNewest = 10000

// listAudit lists audit events, filtered by request, person, target and
// time, showing only what the caller may see: events of their own
// requests, and of others' that policy lets them view.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	f := ledger.Filter{GrantID: q.Get("request"), Person: q.Get("person"), Target: q.Get("target")}
	for name, t := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			parsed, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.fail(w, r, invalidField(name, "%s %.40q is not an RFC 3339 time (2026-12-06T09:00:00Z)", name, v))
				return
			}
			*t = parsed
		}
	}
	newest := 0
	if v := q.Get("newest"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxNewest {
			s.fail(w, r, invalidField("newest", "newest %.20q is not a number from 1 to %d", v, maxNewest))
			return
		}
		newest = n
	}
	out := api.EventList{Events: []api.Event{}}
	visible := map[string]bool{}
	ctx := withTagMemo(r.Context(), s.cfg.Tags)
	// Newest first, from the ledger on, so that asking for the newest few
	// reads and decides the visibility of those alone; one more than asked
	// says whether older ones were left out.
	err := s.cfg.Ledger.NewestEvents(ctx, f, func(e ledger.Event) bool {
		if !s.mayView(ctx, p, e, visible) {
			return true
		}
		if newest > 0 && len(out.Events) == newest {
			out.Truncated = true
			return false
		}
		out.Events = append(out.Events, api.Event{Seq: e.Seq, Time: e.Time.UTC(), Actor: e.Actor, Action: string(e.Action), GrantID: e.GrantID,
			Target: e.Target, Subject: e.Subject, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash})
		return true
	})
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its audit trail; try again shortly", log: err})
		return
	}
	slices.Reverse(out.Events)
	s.write(w, http.StatusOK, out)
}

// mayView decides whether p sees event e, remembering decisions per
// request in seen. Events of a request follow the request; the others (a
// stray user swept) are the caller's when they name them, else policy's
// view of the event's target.
func (s *Server) mayView(ctx context.Context, p *principal, e ledger.Event, seen map[string]bool) bool {
	key := e.GrantID
	if key == "" {
		key = "target:" + e.Target + "\x00" + e.Subject
	}
	if ok, done := seen[key]; done {
		return ok
	}
	ok := false
	switch {
	case e.Actor == p.Name || e.Subject == p.Name && e.GrantID == "":
		ok = true
	case e.GrantID != "":
		rec, err := s.cfg.Ledger.Get(ctx, e.GrantID)
		ok = err == nil && (owns(p, rec) || s.permits(ctx, p, rec, policy.View) == nil)
	case e.Target != "":
		ok = s.permits(ctx, p, ledger.Grant{Requester: e.Subject, Targets: []ledger.Target{{InstanceID: e.Target}}, IssuedAt: e.Time, ExpiresAt: e.Time}, policy.View) == nil
	}
	if e.Actor != p.Name {
		seen[key] = ok
	}
	return ok
}

// verifyAudit checks the whole chain. The answer reveals nothing but
// whether the trail is intact and where it first is not, so every signed
// in caller may ask.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, _ *principal) {
	err := s.cfg.Ledger.Verify(r.Context())
	var broken *ledger.BrokenChainError
	switch {
	case errors.As(err, &broken):
		s.write(w, http.StatusOK, api.Verification{OK: false, Problem: broken.Error()})
		return
	case err != nil:
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its audit trail; try again shortly", log: err})
		return
	}
	head, err := s.cfg.Ledger.Head(r.Context())
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its audit trail; try again shortly", log: err})
		return
	}
	s.write(w, http.StatusOK, api.Verification{OK: true, Events: head.Seq, Head: head.Hash})
}
