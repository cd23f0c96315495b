package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

type sessionFilter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type describeSessionsInput struct {
	State      *string
	MaxResults *int64
	NextToken  *string
	Filters    []sessionFilter
}

type sessionWire struct {
	SessionId    string
	Target       string
	Status       string
	StartDate    *awsjson.Epoch
	EndDate      *awsjson.Epoch `json:",omitempty"`
	DocumentName string
	Owner        string `json:",omitempty"`
	Reason       string `json:",omitempty"`
	AccessType   string
}

type describeSessionsOutput struct {
	Sessions  []sessionWire
	NextToken string `json:",omitempty"`
}

// Limits of DescribeSessions, from the service model.
const (
	maxSessionResults     = 200
	defaultSessionResults = 20
	maxSessionFilters     = 6
)

var sessionStatuses = []string{"Connected", "Connecting", "Disconnected", "Terminated", "Terminating", "Failed"}

// describeSessions lists Active sessions (not yet ended) or the History
// (ended ones), newest first.
//
// The lab's choices where AWS documents no rule: a session is Connecting
// until a client presents its token on the data channel, Connected while
// a websocket is attached, Disconnected while its client is away and may
// resume, and Terminated once over; every session is AccessType Standard.
// Without MaxResults a page holds 20 sessions.
func (s *Service) describeSessions(_ context.Context, in *describeSessionsInput) (*describeSessionsOutput, error) {
	var errs []string
	violation := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	switch {
	case in.State == nil:
		violation("Value null at 'state' failed to satisfy constraint: Member must not be null")
	case *in.State != "Active" && *in.State != "History":
		violation("Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [Active, History]", clip(*in.State))
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > maxSessionResults) {
		violation("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", *in.MaxResults, maxSessionResults)
	}
	if in.Filters != nil && (len(in.Filters) < 1 || len(in.Filters) > maxSessionFilters) {
		violation("Value at 'filters' failed to satisfy constraint: Member must have length between 1 and %d", maxSessionFilters)
	}
	for i, f := range in.Filters {
		if n := len(f.Value); n < 1 || n > 400 {
			violation("Value at 'filters.%d.member.value' failed to satisfy constraint: Member must have length between 1 and 400", i+1)
		}
	}
	if len(errs) > 0 {
		return nil, awsjson.Errorf("ValidationException", "%d validation error(s) detected: %s", len(errs), strings.Join(errs, "; "))
	}
	match, err := parseSessionFilters(in.Filters)
	if err != nil {
		return nil, err
	}
	size := defaultSessionResults
	if in.MaxResults != nil {
		size = int(*in.MaxResults)
	}
	history := *in.State == "History"

	s.mu.Lock()
	var found []sessionWire
	for _, sess := range s.sessions {
		if sess.terminated != history {
			continue
		}
		w := s.wire(sess)
		if match(w, sess) {
			found = append(found, w)
		}
	}
	keys := make(map[string]string, len(found))
	for _, w := range found {
		keys[w.SessionId] = fmt.Sprintf("%012d", 1_000_000_000_000-s.sessions[w.SessionId].seq)
	}
	s.mu.Unlock()
	slices.SortFunc(found, func(a, b sessionWire) int { return strings.Compare(keys[a.SessionId], keys[b.SessionId]) })
	pg, next, err := awsjson.Page(s.pages, "DescribeSessions:"+*in.State, deref(in.NextToken), size, found,
		func(w sessionWire) string { return keys[w.SessionId] })
	if err != nil {
		return nil, err
	}
	if pg == nil {
		pg = []sessionWire{}
	}
	return &describeSessionsOutput{Sessions: pg, NextToken: next}, nil
}

// wire renders sess; s.mu is held.
func (s *Service) wire(sess *session) sessionWire {
	w := sessionWire{
		SessionId: sess.id, Target: sess.target, DocumentName: sess.doc,
		Owner: sess.owner, Reason: sess.reason, AccessType: "Standard",
		StartDate: awsjson.EpochPtr(sess.start),
	}
	switch {
	case sess.terminated:
		w.Status, w.EndDate = "Terminated", awsjson.EpochPtr(sess.end)
	case sess.agent == nil:
		w.Status = "Connecting"
	case sess.agent.Attached():
		w.Status = "Connected"
	default:
		w.Status = "Disconnected"
	}
	return w
}

func parseSessionFilters(fs []sessionFilter) (func(sessionWire, *session) bool, error) {
	var preds []func(sessionWire, *session) bool
	for _, f := range fs {
		value := f.Value
		switch f.Key {
		case "InvokedAfter", "InvokedBefore":
			in, err := awsjson.InvokedFilter(f.Key, value)
			if err != nil {
				return nil, err
			}
			preds = append(preds, func(_ sessionWire, sess *session) bool { return in(sess.start) })
		case "Target":
			preds = append(preds, func(w sessionWire, _ *session) bool { return w.Target == value })
		case "Owner":
			preds = append(preds, func(w sessionWire, _ *session) bool { return w.Owner == value })
		case "SessionId":
			preds = append(preds, func(w sessionWire, _ *session) bool { return w.SessionId == value })
		case "Status":
			if !slices.Contains(sessionStatuses, value) {
				return nil, awsjson.Errorf("InvalidFilterKey", "Filter Status takes one of %s, not %q.", strings.Join(sessionStatuses, ", "), clip(value))
			}
			preds = append(preds, func(w sessionWire, _ *session) bool { return w.Status == value })
		case "AccessType":
			if value != "Standard" && value != "JustInTime" {
				return nil, awsjson.Errorf("InvalidFilterKey", "Filter AccessType takes Standard or JustInTime, not %q.", clip(value))
			}
			preds = append(preds, func(w sessionWire, _ *session) bool { return w.AccessType == value })
		default:
			return nil, awsjson.Errorf("ValidationException", "1 validation error detected: Value '%s' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [InvokedAfter, InvokedBefore, Target, Owner, Status, SessionId, AccessType]", clip(f.Key))
		}
	}
	return func(w sessionWire, sess *session) bool {
		for _, p := range preds {
			if !p(w, sess) {
				return false
			}
		}
		return true
	}, nil
}
