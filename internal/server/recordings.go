package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
)

// Who sees a recording: the requester of the request it was made under
// (it is their own session), and anyone policy lets view that request on
// the recording's own target (the view action, asked with the request's
// context as for the request itself). A recording the caller may not see
// answers as one that does not exist.

// Bounds on a search through the service.
const (
	maxPattern      = 512
	maxMatches      = 1000
	maxGrepProblems = 100
	// castWriteTime is how long one recording's asciicast may take to
	// send.
	castWriteTime = 30 * time.Minute
)

// viewer decides, once per request and target, whether the caller sees
// recordings made there.
type viewer struct {
	s      *Server
	p      *principal
	grants map[string]*ledger.Grant
	seen   map[string]bool
}

func (s *Server) viewer(p *principal) *viewer {
	return &viewer{s: s, p: p, grants: map[string]*ledger.Grant{}, seen: map[string]bool{}}
}

// may says whether the caller sees ref, and the request it was made
// under. An error is the ledger's or policy's, not a refusal.
func (v *viewer) may(ctx context.Context, ref recording.Ref) (bool, *ledger.Grant, error) {
	rec, ok := v.grants[ref.Request]
	if !ok {
		g, err := v.s.cfg.Ledger.Get(ctx, ref.Request)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			// A recording whose request the ledger does not know is
			// nobody's to see through the service.
		case err != nil:
			return false, nil, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its ledger; try again shortly", log: err}
		default:
			rec = &g
		}
		v.grants[ref.Request] = rec
	}
	if rec == nil {
		return false, nil, nil
	}
	if owns(v.p, *rec) {
		return true, rec, nil
	}
	key := ref.Request + "/" + ref.Instance
	if ok, done := v.seen[key]; done {
		return ok, rec, nil
	}
	// Asked about the recording's own target: one who may view a request's
	// staging hosts does not see its production sessions.
	err := v.s.permits(ctx, v.p, scopedTo(*rec, ref.Instance), policy.View)
	var denied *policy.DeniedError
	if err != nil && !errors.As(err, &denied) {
		return false, nil, err
	}
	v.seen[key] = err == nil
	return err == nil, rec, nil
}

func (s *Server) noRecordings(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Recordings == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this service keeps no session recordings"})
		return true
	}
	return false
}

// recordingQuery reads request= and target=.
func recordingQuery(r *http.Request) (recording.Query, error) {
	q := recording.Query{Request: r.URL.Query().Get("request"), Instance: r.URL.Query().Get("target")}
	probe := recording.Ref{Request: "ar-0000000000000000", Instance: "i-00000000", Session: "s"}
	if q.Request != "" {
		probe.Request = q.Request
		if err := probe.Check(); err != nil {
			return q, invalidField("request", "%v", err)
		}
	}
	if q.Instance != "" {
		probe.Instance = q.Instance
		if err := probe.Check(); err != nil {
			return q, invalidField("target", "%v", err)
		}
	}
	return q, nil
}

// visible lists the recordings q matches that the caller may see.
func (s *Server) visible(ctx context.Context, p *principal, q recording.Query) ([]api.Recording, []recording.Ref, error) {
	refs, err := s.cfg.Recordings.List(ctx, q)
	if err != nil {
		return nil, nil, &apiError{code: api.CodeUnavailable, msg: "the recordings could not be listed; try again shortly", log: err}
	}
	v := s.viewer(p)
	out := []api.Recording{}
	var kept []recording.Ref
	for _, ref := range refs {
		ok, rec, err := v.may(ctx, ref)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, recordingView(ref, rec))
			kept = append(kept, ref)
		}
	}
	return out, kept, nil
}

func recordingView(ref recording.Ref, rec *ledger.Grant) api.Recording {
	out := api.Recording{ID: ref.ID(), Request: ref.Request, Target: ref.Instance, Session: ref.Session, Requester: rec.Requester,
		User: ref.User, Size: ref.Size, SHA256: ref.SHA256}
	out.StartedAt, out.EndedAt = timeOrNil(ref.Start), timeOrNil(ref.End)
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// listRecordings lists the recordings the caller may see, by request and
// target.
func (s *Server) listRecordings(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.noRecordings(w, r) {
		return
	}
	q, err := recordingQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, _, err := s.visible(r.Context(), p, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.write(w, http.StatusOK, api.RecordingList{Recordings: out})
}

// findRecording finds the recording the path names, if the caller may
// see it, with the request it was made under.
func (s *Server) findRecording(r *http.Request, p *principal) (recording.Ref, *ledger.Grant, error) {
	ref := recording.Ref{Request: r.PathValue("request"), Instance: r.PathValue("target"), Session: r.PathValue("session")}
	if err := ref.Check(); err != nil {
		return ref, nil, &apiError{code: api.CodeNotFound, field: "id", msg: err.Error()}
	}
	notFound := &apiError{code: api.CodeNotFound, msg: "there is no recording " + ref.ID() + " that you may see"}
	refs, err := s.cfg.Recordings.List(r.Context(), recording.Query{Request: ref.Request, Instance: ref.Instance})
	if err != nil {
		return ref, nil, &apiError{code: api.CodeUnavailable, msg: "the recordings could not be listed; try again shortly", log: err}
	}
	i := slices.IndexFunc(refs, func(x recording.Ref) bool { return x.Session == ref.Session })
	if i < 0 {
		return ref, nil, notFound
	}
	ok, rec, err := s.viewer(p).may(r.Context(), refs[i])
	if err != nil {
		return ref, nil, err
	}
	if !ok {
		return ref, nil, notFound
	}
	return refs[i], rec, nil
}

// scopedTo is rec as policy is asked about one of its recordings: with
// the recording's own target alone, so one who may act on a request's
// staging hosts is not taken to act on its production sessions.
func scopedTo(rec ledger.Grant, instance string) ledger.Grant {
	rec.Targets = slices.DeleteFunc(slices.Clone(rec.Targets), func(t ledger.Target) bool { return t.InstanceID != instance })
	if len(rec.Targets) == 0 {
		rec.Targets = []ledger.Target{{InstanceID: instance}}
	}
	return rec
}

// opened is a recording the caller may see, open for reading.
type opened struct {
	ref   recording.Ref
	grant *ledger.Grant
	log   *recording.Log
}

// openRecording finds the recording the path names, if the caller may see
// it, and opens it; when it cannot, it has answered the caller and
// returns false.
func (s *Server) openRecording(w http.ResponseWriter, r *http.Request, p *principal) (opened, bool) {
	if s.noRecordings(w, r) {
		return opened{}, false
	}
	ref, rec, err := s.findRecording(r, p)
	if err != nil {
		s.fail(w, r, err)
		return opened{}, false
	}
	l, err := s.cfg.Recordings.Open(r.Context(), ref)
	if err != nil {
		// Damaged or changed since it was collected: an auditor must hear
		// it, not a 404.
		s.fail(w, r, &apiError{code: api.CodeConflict, msg: fmt.Sprintf("recording %s cannot be read: %v", ref.ID(), err), log: err})
		return opened{}, false
	}
	return opened{ref: ref, grant: rec, log: l}, true
}

// deleteRecording deletes one recording before its retention ends: its
// object and index, with a recording-deleted event naming the caller and
// their reason. Policy decides (delete-recording, asked about the
// recording's own target with its request's context); the requester gets
// no say over their own recording. A caller who may not see it is told
// it does not exist; one who sees it but may not delete it is told why.
func (s *Server) deleteRecording(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.noRecordings(w, r) {
		return
	}
	var in api.DeleteRecording
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if strings.TrimSpace(in.Reason) == "" {
		s.fail(w, r, invalidField("reason", "give the reason this recording is deleted before its retention ends; it goes into the audit trail with your name"))
		return
	}
	ref, rec, err := s.findRecording(r, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.permits(r.Context(), p, scopedTo(*rec, ref.Instance), policy.DeleteRecording); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.detached(r.Context())
	defer cancel()
	if err := s.cfg.Access.DeleteRecording(ctx, p.Name, ref.Request, ref.Instance, ref.Session, in.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getRecording describes one recording, with what it says of its session.
func (s *Server) getRecording(w http.ResponseWriter, r *http.Request, p *principal) {
	o, ok := s.openRecording(w, r, p)
	if !ok {
		return
	}
	out, in := recordingView(o.ref, o.grant), o.log.Info
	out.Detail = &api.RecordingDetail{Command: in.Asked, Terminal: in.Terminal, Rows: in.Rows, Cols: in.Cols, Host: in.Host,
		Client: in.Client, Start: in.Start.UTC(), Title: recording.Title(in), EventLog: in.EventLog,
		// Policy that cannot be read offers no deletion; the DELETE would
		// say why.
		CallerMayDelete: s.cfg.Access.DeletesRecordings() && s.permits(r.Context(), p, scopedTo(*o.grant, o.ref.Instance), policy.DeleteRecording) == nil}
	s.write(w, http.StatusOK, out)
}

// recordingCast sends a recording as asciicast v2, for `passport sessions
// play` and export, and for web players.
func (s *Server) recordingCast(w http.ResponseWriter, r *http.Request, p *principal) {
	o, ok := s.openRecording(w, r, p)
	if !ok {
		return
	}
	l := o.log
	if l.Info.EventLog {
		s.fail(w, r, &apiError{code: api.CodeConflict, msg: recording.ErrEventLog.Error()})
		return
	}
	events, err := l.Events()
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeConflict, msg: "the recording cannot be read: " + err.Error()})
		return
	}
	defer events.Close()
	// A long recording streams for longer than the server's write timeout
	// allows an answer: give it the room a download needs.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(castWriteTime)); err != nil {
		s.cfg.Log.Warn("a recording's asciicast keeps the server's write timeout", "error", err.Error())
	}
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.WriteHeader(http.StatusOK)
	if err := recording.WriteAsciicast(w, l.Info, events); err != nil {
		// The status is sent; what the caller reads ends early, and the
		// asciicast reader says where.
		s.cfg.Log.Error("recording cut short", "path", r.URL.Path, "caller", p.Name, "error", err.Error())
	}
}

// recordingEvents sends a Windows event session's events.jsonl as it was
// collected, for `passport sessions export --format jsonl`.
func (s *Server) recordingEvents(w http.ResponseWriter, r *http.Request, p *principal) {
	o, ok := s.openRecording(w, r, p)
	if !ok {
		return
	}
	l := o.log
	if !l.Info.EventLog {
		s.fail(w, r, &apiError{code: api.CodeConflict, msg: "this is a terminal recording, not a Windows event log: export it as asciicast"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if err := l.EventLines(w); err != nil {
		s.cfg.Log.Error("event log cut short", "path", r.URL.Path, "caller", p.Name, "error", err.Error())
	}
}

// grepRecordings searches the recordings the caller may see for lines
// matching pattern (RE2 syntax, which runs in linear time).
func (s *Server) grepRecordings(w http.ResponseWriter, r *http.Request, p *principal) {
	if s.noRecordings(w, r) {
		return
	}
	pattern := r.URL.Query().Get("pattern")
	if pattern == "" || len(pattern) > maxPattern {
		s.fail(w, r, invalidField("pattern", "give a pattern of 1 to %d characters to search for", maxPattern))
		return
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		s.fail(w, r, invalidField("pattern", "pattern %.60q is not a regular expression (RE2 syntax): %v", pattern, err))
		return
	}
	q, err := recordingQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, refs, err := s.visible(r.Context(), p, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	found, truncated, problems, err := recording.Search(r.Context(), s.cfg.Recordings, refs, re, maxMatches)
	if err != nil {
		return // the caller went away
	}
	out := api.RecordingMatches{Matches: []api.RecordingMatch{}, Problems: []api.RecordingProblem{}, Truncated: truncated, Searched: len(refs)}
	for _, f := range found {
		out.Matches = append(out.Matches, api.RecordingMatch{Recording: f.Ref.ID(), At: f.At.Seconds(), Input: f.Input, Line: f.Line})
	}
	for _, p := range problems[:min(len(problems), maxGrepProblems)] {
		out.Problems = append(out.Problems, api.RecordingProblem{Recording: p.Ref.ID(), Message: p.Err.Error()})
	}
	s.write(w, http.StatusOK, out)
}
