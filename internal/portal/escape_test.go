package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// pagesWith is every page of the portal with v in every value that a
// requester, an identity provider, a host or a recording controls.
func pagesWith(v string) map[string]view {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	votes := []api.Vote{{By: v, Kind: v, At: now, Comment: v}}
	req := api.Request{ID: v, Requester: v, RequesterKind: v, Groups: []string{v}, Reason: v, Username: v, Duration: v, State: v,
		Targets:  []api.Target{{InstanceID: v, Platform: v, Status: v, Detail: v}},
		Approval: &api.Approval{Approvers: []string{v}, Why: v, Given: votes, Denied: &votes[0]}, BreakGlass: true,
		Review: &api.Review{Due: now, By: v, At: &now, Comment: v}, ExpiresAt: now, CallerMayDecide: true, CallerMayEnd: true}
	rv := requestView{Request: req, Targets: []targetView{{Target: req.Targets[0], Name: v}}, Left: v, Live: true, Waiting: v}
	rec := api.Recording{ID: v, Request: v, Target: v, Session: v, Requester: v, User: v, StartedAt: &now,
		Detail: &api.RecordingDetail{Command: v, Terminal: true, Host: v, Client: v, Start: now, Title: v}}
	pages := map[string]any{
		"new": newPage{Form: requestForm{By: "tag", Tags: []tagPair{{v, v}}, Targets: []string{v}, Reason: v, Duration: v, BreakGlass: true, PublicKey: v, Key: v},
			Instances: []instanceRow{{Instance: api.Instance{InstanceID: v, ComputerName: v, Platform: v, PingStatus: v}, Checked: true}},
			Windows:   []option{{v, v, true}},
			Preview: &previewView{Preview: api.Preview{Decision: v, Message: v, ReasonProblem: v, BreakGlassOffered: true,
				Targets: []api.PreviewTarget{{InstanceID: v, ComputerName: v, Platform: v, PingStatus: v, Decision: v, Why: v, Problem: v}},
				Windows: []api.PreviewWindow{{Duration: v, Decision: v}}}, Count: v, Allowed: v, Problems: []string{v}},
			PreviewProblem: &problem{Message: v, Field: v}, Server: v},
		"requests": listPage{Requests: []requestView{rv}, State: v, States: []string{v}},
		"request": detailPage{Request: rv, Extend: []option{{v, v, true}}, Allowed: v,
			Connect: &connectView{Login: v, Keep: v, Commands: []command{{v, v}}, SSHConfig: v, Identity: v, CertFile: v}},
		"approvals": approvalsPage{Waiting: []waitingView{{Summary: rv, Asked: v, Given: votes, Deadline: v}}, Answered: v, Comment: v},
		"admin":     adminPage{Requests: []requestView{rv}, Unreviewed: []reviewView{{Summary: rv, Overdue: true}}, Answered: v, Comment: v},
		"audit": auditPage{Filter: auditFilter{v, v, v, v, v}, Query: v, Verified: &api.Verification{Problem: v, Head: v},
			Events: []api.Event{{Time: now, Actor: v, Action: v, GrantID: v, Target: v, Subject: v, Detail: v}}},
		"sessions": sessionsPage{Request: v, Target: v, Pattern: v, Searched: true, Where: map[string]string{v: v},
			Recordings: []recordingRow{{Recording: rec, TargetName: v}},
			Found:      api.RecordingMatches{Matches: []api.RecordingMatch{{Recording: v, Line: v}}, Problems: []api.RecordingProblem{{Recording: v, Message: v}}}},
		"recording": recordingPage{Recording: rec, TargetName: v, Lines: []castLine{{1, v}}, Typed: []castLine{{2, v}}, Duration: v, Reason: v},
		"error":     nil,
		"signin":    nil,
		"signedout": nil,
	}
	out := map[string]view{}
	for name, page := range pages {
		out[name] = view{Title: v, Nav: v, Me: api.Principal{Name: v, Kind: v, Groups: []string{v}}, Flash: v,
			Problem: &problem{Message: v, Field: v, Status: http.StatusBadRequest}, Page: page}
	}
	return out
}

// FuzzPagesShowValuesAsText renders every page with one string in every
// value that comes from outside, and fails when that string, holding
// anything markup is made of, comes through unescaped: html/template must
// turn it into text (or a URL's escapes) wherever it lands.
func FuzzPagesShowValuesAsText(f *testing.F) {
	for _, s := range []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `' onmouseover='alert(1)`,
		`</textarea><script>x</script>`, `javascript:alert(1)`, `</pre><svg/onload=x>`, "&lt;b&gt;", "a\x00<b"} {
		f.Add(s)
	}
	u, _ := url.Parse("https://passport.example.com")
	p, err := New(Config{API: http.NotFoundHandler(), URL: u})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Fences make the value recognisable in the page, whatever it is;
		// two different ones, so that the end of one value, the page's own
		// markup and the start of the next never read as one.
		v := "AQ9" + s + "ZQ9"
		markup := strings.ContainsAny(s, `<>"'&`)
		for name, data := range pagesWith(v) {
			w := httptest.NewRecorder()
			p.render(w, http.StatusOK, name, data)
			if w.Code != http.StatusOK {
				t.Fatalf("page %s with %q: %d %s", name, s, w.Code, w.Body)
			}
			if markup && strings.Contains(w.Body.String(), v) {
				t.Errorf("page %s shows %q as it is: markup, not text", name, s)
			}
		}
	})
}

// A spreadsheet runs a cell that starts with =, +, -, @ or a control
// character as a formula; the CSV export keeps such values as text.
func TestCSVCellsAreNeverFormulas(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("http://evil.example","x")`: `'=HYPERLINK("http://evil.example","x")`,
		"+1+1":                                  "'+1+1",
		"-2+3":                                  "'-2+3",
		"@SUM(A1)":                              "'@SUM(A1)",
		"\tcmd":                                 "'\tcmd",
		"INC-1 disk":                            "INC-1 disk",
		"":                                      "",
		"alice":                                 "alice",
		"reason: =later":                        "reason: =later",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q; want %q", in, got, want)
		}
	}
}
