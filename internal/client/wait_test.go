package client

import (
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// What a client that waits says of a request: what it still waits for
// (the request's own approval, or its longer window's), and who denied
// it and why.
func TestWaitingWords(t *testing.T) {
	deadline := time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)
	two := api.Approval{Required: 2, Approvers: []string{"group:admins", "user:carol"}, Deadline: deadline, Given: []api.Vote{{By: "erin"}}}
	for _, tc := range []struct {
		name    string
		r       api.Request
		waiting bool
		want    string
	}{
		{"pending", api.Request{State: "pending", Approval: &two}, true, "1 more approval from group:admins or user:carol, until 2026-12-06T10:30:00Z"},
		{"a longer window", api.Request{State: "active", Approval: &api.Approval{Required: 1}, Extension: &api.Extension{Approval: api.Approval{Required: 2, Deadline: deadline}}}, true,
			"2 more approvals from approvers no policy names, until 2026-12-06T10:30:00Z"},
		{"granted after approval", api.Request{State: "active", Approval: &two}, false, ""},
		{"never waited", api.Request{State: "active"}, false, "nothing"},
	} {
		if got := Waiting(tc.r); got != tc.waiting {
			t.Errorf("%s: Waiting %v, want %v", tc.name, got, tc.waiting)
		}
		if tc.want != "" {
			if got := WaitingFor(tc.r); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
	}

	denied := api.Request{State: "denied", Approval: &api.Approval{Required: 1, Denied: &api.Vote{By: "carol", Comment: "no change ticket"}}}
	if why, ok := Denied(denied); !ok || why != "carol: no change ticket" {
		t.Errorf("denied: %q %v", why, ok)
	}
	if why, ok := Denied(api.Request{State: "denied"}); !ok || why != "an approver" {
		t.Errorf("denied with no vote on record: %q %v", why, ok)
	}
	if _, ok := Denied(api.Request{State: "expired", Approval: &two}); ok {
		t.Error("an expired request read as denied")
	}
}
