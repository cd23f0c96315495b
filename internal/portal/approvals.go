package portal

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

type approvalsPage struct {
	Waiting []waitingView
	// Answered is the request a failed decision was about, to show its
	// problem beside it; Comment what the person had written.
	Answered string
	Comment  string
}

// waitingView is a request waiting for someone's approval.
type waitingView struct {
	Summary requestView
	// What is asked: the window, or a longer one.
	Asked    string
	Given    []api.Vote
	Deadline string
	// Approved says the person has approved it already: it waits for
	// others.
	Approved bool
}

// approvals lists what waits for an approval the person may give: the
// service lists, with all, the requests policy lets them approve (or
// view) while they wait. Their own are never theirs to approve; they are
// on My requests.
func (p *Portal) approvals(v *visit) error {
	return p.showApprovals(v, http.StatusOK, "", "", nil)
}

func (p *Portal) showApprovals(v *visit, status int, answered, comment string, pr *problem) error {
	reqs, err := v.api.List(v.r.Context(), client.ListOptions{All: true})
	if err != nil {
		return err
	}
	names := p.names(v)
	page := approvalsPage{Answered: answered, Comment: comment}
	for _, r := range reqs {
		// The service says which are the person's to decide: policy
		// lets them approve, and they are not theirs. Others they may
		// only view are on the admin page.
		if !r.CallerMayDecide {
			continue
		}
		rv := p.requestView(v, r, names)
		var a *api.Approval
		asked := "for " + r.Duration
		switch {
		case r.State == "pending" && r.Approval != nil:
			a = r.Approval
		case r.State == "active" && r.Extension != nil && r.Extension.Approval.Denied == nil:
			a = &r.Extension.Approval
			asked = "a longer window, until " + clock(r.Extension.ExpiresAt) + " (now until " + clock(r.ExpiresAt) + ")"
		default:
			continue
		}
		w := waitingView{Summary: rv, Asked: asked, Given: a.Given, Deadline: clock(a.Deadline)}
		for _, g := range a.Given {
			if g.By == v.me.Name && cmp.Or(g.Kind, "person") == v.me.Kind {
				w.Approved = true
			}
		}
		page.Waiting = append(page.Waiting, w)
	}
	p.render(v.w, status, "approvals", view{Title: "Approvals", Nav: "approvals", Me: v.me, Flash: flash(v.r), Problem: pr, Page: page})
	return nil
}

// decide approves or denies a request, with the person's comment.
func (p *Portal) decide(v *visit) error {
	id, comment := v.r.PathValue("id"), strings.TrimSpace(v.r.PostFormValue("comment"))
	var err error
	done := ""
	switch v.r.PostFormValue("decision") {
	case "approve":
		_, err = v.api.Approve(v.r.Context(), id, comment)
		done = "approved"
	case "deny":
		if comment == "" {
			return p.showApprovals(v, http.StatusBadRequest, id, comment, &problem{Message: "Say why you deny it in the comment: the requester and the audit trail read it.", Field: "comment", Status: http.StatusBadRequest})
		}
		_, err = v.api.Deny(v.r.Context(), id, comment)
		done = "denied"
	default:
		return p.showApprovals(v, http.StatusBadRequest, id, comment, &problem{Message: "Choose Approve or Deny.", Status: http.StatusBadRequest})
	}
	if err != nil {
		pr := problemOf(err)
		return p.showApprovals(v, pr.Status, id, comment, pr)
	}
	http.Redirect(v.w, v.r, "/approvals?done="+url.QueryEscape(done), http.StatusSeeOther)
	return nil
}

type adminPage struct {
	Requests []requestView
	// Unreviewed are the break-glass grants that owe a review, whatever
	// their state, that the person may see or review.
	Unreviewed []reviewView
	// Answered is the request a failed review was about, to show its
	// problem beside it; Comment what the person had written.
	Answered string
	Comment  string
}

// reviewView is a break-glass grant that owes a review.
type reviewView struct {
	Summary requestView
	Overdue bool
}

// admin lists every open request policy lets the person see, to end any
// policy lets them end, and the break-glass grants that owe a review:
// the service decides what is listed and allowed, per request.
func (p *Portal) admin(v *visit) error {
	return p.showAdmin(v, http.StatusOK, "", "", nil)
}

func (p *Portal) showAdmin(v *visit, status int, answered, comment string, pr *problem) error {
	reqs, err := v.api.List(v.r.Context(), client.ListOptions{All: true})
	if err != nil {
		return err
	}
	unreviewed, err := v.api.List(v.r.Context(), client.ListOptions{All: true, Unreviewed: true})
	if err != nil {
		return err
	}
	names := p.names(v)
	page := adminPage{Answered: answered, Comment: comment}
	for _, r := range reqs {
		page.Requests = append(page.Requests, p.requestView(v, r, names))
	}
	now := p.cfg.Now()
	for _, r := range unreviewed {
		rv := reviewView{Summary: p.requestView(v, r, names)}
		rv.Overdue = r.Review != nil && now.After(r.Review.Due)
		page.Unreviewed = append(page.Unreviewed, rv)
	}
	p.render(v.w, status, "admin", view{Title: "Admin: every live request", Nav: "admin", Me: v.me, Flash: flash(v.r), Problem: pr, Page: page})
	return nil
}

// review records the person's review of a break-glass grant: what they
// found, in a comment the audit trail keeps.
func (p *Portal) review(v *visit) error {
	id, comment := v.r.PathValue("id"), strings.TrimSpace(v.r.PostFormValue("comment"))
	if comment == "" {
		return p.showAdmin(v, http.StatusBadRequest, id, comment, &problem{Message: "Say what you found in the comment: whether breaking the glass was warranted, and what was done. The audit trail keeps it.", Field: "comment", Status: http.StatusBadRequest})
	}
	if _, err := v.api.Review(v.r.Context(), id, comment); err != nil {
		pr := problemOf(err)
		return p.showAdmin(v, pr.Status, id, comment, pr)
	}
	http.Redirect(v.w, v.r, "/admin?done=reviewed", http.StatusSeeOther)
	return nil
}
