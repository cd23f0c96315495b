package portal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// windows are the lengths of window the forms offer, as the service's
// preview ladder has them.
var windows = []string{"15m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h"}

// tagRows is how many tag pairs the new request form offers.
const tagRows = 3

// requestForm is the new request form as the person filled it in.
type requestForm struct {
	By       string // tag or name
	Tags     []tagPair
	Targets  []string
	Reason   string
	Duration string
	Sudo     bool
	// BreakGlass asks for access at once where policy would otherwise
	// hold it for approval, and lets the glass be broken.
	BreakGlass bool
	PublicKey  string
	// Key is the form's idempotency key: sent twice, it asks once.
	Key string
}

type tagPair struct{ Key, Value string }

func readRequestForm(r *http.Request) requestForm {
	f := requestForm{By: r.PostFormValue("by"), Reason: strings.TrimSpace(r.PostFormValue("reason")), Duration: r.PostFormValue("duration"),
		Sudo: r.PostFormValue("sudo") != "", BreakGlass: r.PostFormValue("break_glass") != "", PublicKey: strings.TrimSpace(r.PostFormValue("public_key")), Key: r.PostFormValue("key")}
	if f.By != "name" {
		f.By = "tag"
	}
	for i := range tagRows {
		f.Tags = append(f.Tags, tagPair{strings.TrimSpace(r.PostFormValue(fmt.Sprintf("tag_key_%d", i))), strings.TrimSpace(r.PostFormValue(fmt.Sprintf("tag_value_%d", i)))})
	}
	for _, t := range r.PostForm["target"] {
		if t != "" && !slices.Contains(f.Targets, t) {
			f.Targets = append(f.Targets, t)
		}
	}
	if !slices.Contains(windows, f.Duration) {
		f.Duration = "1h"
	}
	if f.Key == "" {
		f.Key = newKey()
	}
	return f
}

// tags is the form's tags, or nil when it names none.
func (f requestForm) tags() map[string]string {
	var m map[string]string
	for _, t := range f.Tags {
		if t.Key == "" && t.Value == "" {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[t.Key] = t.Value
	}
	return m
}

// chosen says whether the form names any target yet.
func (f requestForm) chosen() bool {
	if f.By == "name" {
		return len(f.Targets) > 0
	}
	return len(f.tags()) > 0
}

func (f requestForm) preview() api.PreviewRequest {
	in := api.PreviewRequest{Reason: f.Reason, Duration: f.Duration, Sudo: f.Sudo, BreakGlass: f.BreakGlass}
	if f.By == "name" {
		in.Targets = f.Targets
	} else {
		in.Tags = f.tags()
	}
	return in
}

func (f requestForm) create() api.CreateRequest {
	in := f.preview()
	return api.CreateRequest{Targets: in.Targets, Tags: in.Tags, Reason: f.Reason, Duration: f.Duration, Sudo: f.Sudo, BreakGlass: f.BreakGlass, PublicKey: f.PublicKey}
}

// newPage is the new request page.
type newPage struct {
	Form      requestForm
	Instances []instanceRow
	Windows   []option
	Preview   *previewView
	// PreviewProblem is why there is no preview (a field to fix).
	PreviewProblem *problem
	Server         string
}

// GlassShown says whether the form offers break-glass: policy offers it
// for what the form asks, or the person has already chosen it.
func (n newPage) GlassShown() bool {
	return n.Form.BreakGlass || n.Preview != nil && n.Preview.BreakGlassOffered
}

type instanceRow struct {
	api.Instance
	Checked bool
}

type option struct {
	Value, Label string
	Selected     bool
}

// previewView is policy's answer as the page shows it.
type previewView struct {
	api.Preview
	Count    string // "2 targets: 1 Linux, 1 Windows"
	Allowed  string // the windows policy allows, in words
	Problems []string
}

func (p *Portal) newRequest(v *visit) error {
	f := requestForm{By: "tag", Duration: "1h", Key: newKey(), Tags: make([]tagPair, tagRows)}
	f.PublicKey = p.lastKey(v)
	return p.showNew(v, http.StatusOK, f, nil)
}

// lastKey is the public key of the person's latest request, open or
// ended: the key they brought last time is likely the one they bring
// now. It is a public key, and theirs.
func (p *Portal) lastKey(v *visit) string {
	for _, state := range []string{"open", "revoked", "expired"} {
		if mine, err := v.api.List(v.r.Context(), client.ListOptions{State: state}); err == nil && len(mine) > 0 {
			return mine[0].PublicKey
		}
	}
	return ""
}

// showNew renders the new request form, with policy's answer once the
// form names targets.
func (p *Portal) showNew(v *visit, status int, f requestForm, pr *problem) error {
	page := newPage{Form: f, Server: p.cfg.URL.String()}
	instances, err := v.api.Targets(v.r.Context(), client.TargetFilter{})
	if err != nil {
		return err
	}
	for _, in := range instances {
		page.Instances = append(page.Instances, instanceRow{Instance: in, Checked: slices.Contains(f.Targets, in.InstanceID)})
	}
	if f.chosen() {
		page.Preview, page.PreviewProblem = p.previewOf(v.r.Context(), v.api, f)
	}
	page.Windows = windowOptions(f.Duration, page.Preview)
	p.render(v.w, status, "new", view{Title: "New request", Nav: "new", Me: v.me, Problem: pr, Page: page})
	return nil
}

// previewOf asks the service what policy would say of the form.
func (p *Portal) previewOf(ctx context.Context, c *client.Client, f requestForm) (*previewView, *problem) {
	pv, err := c.Preview(ctx, f.preview())
	if err != nil {
		return nil, problemOf(err)
	}
	out := &previewView{Preview: pv}
	platforms := map[string]int{}
	for _, t := range pv.Targets {
		platforms[cmp.Or(t.Platform, "unknown")]++
		if t.Problem != "" {
			out.Problems = append(out.Problems, t.Problem)
		}
		if t.Platform == "Windows" {
			out.Problems = append(out.Problems, fmt.Sprintf("%s is a Windows host: its password is sealed to a key only the passport CLI holds, so ask for it there: passport request create --server %s --target %s --reason …",
				cmp.Or(t.ComputerName, t.InstanceID), p.cfg.URL, t.InstanceID))
		}
	}
	var parts []string
	for _, name := range []string{"Linux", "Windows", "MacOS", "unknown"} {
		if n := platforms[name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
		}
	}
	out.Count = fmt.Sprintf("%s: %s", plural(len(pv.Targets), "target"), strings.Join(parts, ", "))
	out.Allowed = allowedWindows(pv.Windows)
	return out, nil
}

// allowedWindows says which windows policy grants at once and with
// approval, in words.
func allowedWindows(ws []api.PreviewWindow) string {
	var now, later string
	approvals := 0
	for _, w := range ws {
		switch w.Decision {
		case "grant":
			now = w.Duration
		case "approval":
			later, approvals = w.Duration, max(approvals, w.Approvals)
		}
	}
	switch {
	case now == "" && later == "":
		return "Policy grants no window of these targets to you."
	case later == "":
		return "Policy grants up to " + now + " at once."
	case now == "":
		return fmt.Sprintf("Policy grants up to %s once %s.", later, approvalWords(approvals))
	}
	return fmt.Sprintf("Policy grants up to %s at once, and up to %s once %s.", now, later, approvalWords(approvals))
}

func approvalWords(n int) string {
	if n == 1 {
		return "someone approves"
	}
	return fmt.Sprintf("%d people approve", n)
}

// windowOptions are the window choices, each with policy's answer when
// there is a preview.
func windowOptions(selected string, pv *previewView) []option {
	answer := map[string]string{}
	if pv != nil {
		for _, w := range pv.Windows {
			switch w.Decision {
			case "grant":
				answer[w.Duration] = "granted at once"
			case "approval":
				answer[w.Duration] = "needs " + plural(w.Approvals, "approval")
			default:
				answer[w.Duration] = "denied"
			}
		}
	}
	out := make([]option, 0, len(windows))
	for _, w := range windows {
		label := w
		if a := answer[w]; a != "" {
			label += " (" + a + ")"
		}
		out = append(out, option{Value: w, Label: label, Selected: w == selected})
	}
	return out
}

// previewRequest shows policy's answer to the form: the whole page, or
// for the page's script only the answer.
func (p *Portal) previewRequest(v *visit) error {
	f := readRequestForm(v.r)
	if v.r.Header.Get("X-Passport-Fragment") == "preview" {
		var page newPage
		if f.chosen() {
			page.Preview, page.PreviewProblem = p.previewOf(v.r.Context(), v.api, f)
		}
		page.Form = f
		p.fragment(v.w, "new", "preview", view{Me: v.me, Page: page})
		return nil
	}
	return p.showNew(v, http.StatusOK, f, nil)
}

// createRequest asks for access with the form.
func (p *Portal) createRequest(v *visit) error {
	f := readRequestForm(v.r)
	req, err := v.api.Create(v.r.Context(), f.create(), f.Key)
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) && ce.Request != nil {
			// Something was done on hosts before it failed: the request
			// stands as the service says, and its page shows it.
			return p.showRequestAs(v, http.StatusOK, ce.Request.ID, problemOf(err))
		}
		pr := problemOf(err)
		return p.showNew(v, pr.Status, f, pr)
	}
	done := "granted"
	switch {
	case req.State == "pending":
		done = "pending"
	case req.BreakGlass:
		done = "break-glass"
	}
	http.Redirect(v.w, v.r, "/requests/"+url.PathEscape(req.ID)+"?done="+done, http.StatusSeeOther)
	return nil
}

// states a person may list their requests by.
var listStates = []string{"open", "pending", "active", "revoked", "expired", "denied", "failed"}

type listPage struct {
	Requests []requestView
	State    string
	States   []string
}

func (p *Portal) myRequests(v *visit) error {
	state := v.r.URL.Query().Get("state")
	if !slices.Contains(listStates, state) {
		state = "open"
	}
	reqs, err := v.api.List(v.r.Context(), client.ListOptions{State: state})
	if err != nil {
		return err
	}
	names := p.names(v)
	page := listPage{State: state, States: listStates}
	for _, r := range reqs {
		page.Requests = append(page.Requests, p.requestView(v, r, names))
	}
	p.render(v.w, http.StatusOK, "requests", view{Title: "My requests", Nav: "requests", Me: v.me, Flash: flash(v.r), Page: page})
	return nil
}

// names are the instances' computer names by id, for showing targets as
// people know them; ids stand in when they cannot be had.
func (p *Portal) names(v *visit) map[string]string {
	out := map[string]string{}
	found, err := v.api.Targets(v.r.Context(), client.TargetFilter{})
	if err != nil {
		return out
	}
	for _, in := range found {
		if in.ComputerName != "" {
			out[in.InstanceID] = in.ComputerName
		}
	}
	return out
}

// requestView is a request as the pages show it.
type requestView struct {
	api.Request
	Mine    bool
	Targets []targetView
	// Left is the time left in words; Live says there is any.
	Left string
	Live bool
	// Waiting says what the request (or a longer window of it) waits for.
	Waiting string
}

type targetView struct {
	api.Target
	Name string
}

func (p *Portal) requestView(v *visit, r api.Request, names map[string]string) requestView {
	rv := requestView{Request: r, Mine: r.Requester == v.me.Name && r.RequesterKind == v.me.Kind}
	for _, t := range r.Targets {
		rv.Targets = append(rv.Targets, targetView{Target: t, Name: names[t.InstanceID]})
	}
	now := p.cfg.Now()
	if r.State == "active" && now.Before(r.ExpiresAt) {
		rv.Live, rv.Left = true, timeLeft(r.ExpiresAt.Sub(now))
	}
	switch {
	case r.State == "pending" && r.Approval != nil:
		rv.Waiting = "Waits for " + waitsFor(*r.Approval) + ", until " + clock(r.Approval.Deadline) + "; nothing is done on its hosts until then, and its window starts at the last approval."
	case r.Extension != nil && r.Extension.Approval.Denied == nil:
		rv.Waiting = "A longer window, until " + clock(r.Extension.ExpiresAt) + ", waits for " + waitsFor(r.Extension.Approval) + ", until " + clock(r.Extension.Approval.Deadline) + "; the current window stands meanwhile."
	}
	return rv
}

// waitsFor says how many more approvals, from whom.
func waitsFor(a api.Approval) string {
	more := max(a.Required-len(a.Given), 0)
	who := "anyone policy lets approve"
	if len(a.Approvers) > 0 {
		who = strings.Join(a.Approvers, " or ")
	}
	return fmt.Sprintf("%s more from %s", plural(more, "approval"), who)
}

// detailPage is one request's page.
type detailPage struct {
	Request requestView
	Connect *connectView
	Extend  []option
	Allowed string
}

func (p *Portal) showRequest(v *visit) error {
	return p.showRequestAs(v, http.StatusOK, v.r.PathValue("id"), nil)
}

// showRequestAs shows request id, with a problem from the call that led
// here.
func (p *Portal) showRequestAs(v *visit, status int, id string, pr *problem) error {
	r, err := v.api.Get(v.r.Context(), id)
	if err != nil {
		return err
	}
	rv := p.requestView(v, r, p.names(v))
	page := detailPage{Request: rv}
	if rv.Mine && rv.Live {
		page.Connect = p.connectView(r, rv.Targets)
		// What policy would say of a longer window, before asking.
		var ids []string
		for _, t := range r.Targets {
			ids = append(ids, t.InstanceID)
		}
		if pv, err := v.api.Preview(v.r.Context(), api.PreviewRequest{Targets: ids, Reason: r.Reason, Sudo: r.Sudo, Duration: r.Duration}); err == nil {
			page.Allowed = allowedWindows(pv.Windows)
			page.Extend = windowOptions(r.Duration, &previewView{Preview: pv})
		} else {
			page.Extend = windowOptions(r.Duration, nil)
		}
	}
	title := "Request " + r.ID
	p.render(v.w, status, "request", view{Title: title, Nav: "requests", Me: v.me, Flash: flash(v.r), Problem: pr, Page: page})
	return nil
}

// certificate downloads the certificate of the person's own request: the
// service signed the public key they brought, and it is of use only with
// their private key, which never came here.
func (p *Portal) certificate(v *visit) error {
	r, err := v.api.Get(v.r.Context(), v.r.PathValue("id"))
	if err != nil {
		return err
	}
	if r.Certificate == "" {
		return &api.Error{Code: api.CodeConflict, Status: http.StatusConflict, Message: "request " + r.ID + " has no certificate (it is " + r.State + "); it gets one when it is granted"}
	}
	v.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	v.w.Header().Set("Content-Disposition", `attachment; filename="`+certFileName(r.ID)+`"`)
	fmt.Fprintln(v.w, strings.TrimSpace(r.Certificate))
	return nil
}

// extendRequest moves the end of the person's request's window.
func (p *Portal) extendRequest(v *visit) error {
	id := v.r.PathValue("id")
	d, err := time.ParseDuration(v.r.PostFormValue("duration"))
	if err != nil || !slices.Contains(windows, v.r.PostFormValue("duration")) {
		return p.showRequestAs(v, http.StatusBadRequest, id, &problem{Message: "Pick the new length of the window from the list.", Field: "duration", Status: http.StatusBadRequest})
	}
	r, err := v.api.Extend(v.r.Context(), id, d)
	if err != nil {
		pr := problemOf(err)
		return p.showRequestAs(v, pr.Status, id, pr)
	}
	done := "extended"
	if r.Extension != nil {
		done = "extension-pending"
	}
	http.Redirect(v.w, v.r, "/requests/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// endRequest ends a request now: the person's own, or another's that
// policy lets them end. back says which page to return to.
func (p *Portal) endRequest(v *visit) error {
	id := v.r.PathValue("id")
	if _, err := v.api.End(v.r.Context(), id); err != nil {
		pr := problemOf(err)
		if pr.Status == http.StatusNotFound {
			return err
		}
		return p.showRequestAs(v, pr.Status, id, pr)
	}
	back := "/requests/" + url.PathEscape(id)
	if b := v.r.PostFormValue("back"); b == "/admin" || b == "/requests" {
		back = b
	}
	http.Redirect(v.w, v.r, back+"?done=ended", http.StatusSeeOther)
	return nil
}

// flashes are what a page says after a change, by the done parameter of
// the redirect that brought the browser there.
var flashes = map[string]string{
	"granted":           "Access granted. How to connect is below.",
	"break-glass":       "Access granted at once: you broke the glass. Everyone watching has been told, and someone else reviews it afterwards. How to connect is below.",
	"reviewed":          "Your review was recorded.",
	"pending":           "Your request was recorded and waits for approval; nothing is done on its hosts until then.",
	"extended":          "The window was moved.",
	"extension-pending": "The longer window waits for approval; the current window stands meanwhile.",
	"ended":             "The request was ended: its users are gone from its hosts.",
	"approved":          "Your approval was recorded.",
	"denied":            "Your denial was recorded; the request has ended.",
}

func flash(r *http.Request) string { return flashes[r.URL.Query().Get("done")] }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// timeLeft says a remaining time as people read it.
func timeLeft(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h > 0 && m > 0:
		return fmt.Sprintf("%d h %d min left", h, m)
	case h > 0:
		return fmt.Sprintf("%d h left", h)
	case m > 0:
		return fmt.Sprintf("%d min left", m)
	}
	return "less than a minute left"
}

// clock is a time as the pages print it.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

var reRequestID = regexp.MustCompile(`^ar-[0-9a-f]{16}$`)

func certFileName(id string) string {
	if !reRequestID.MatchString(id) {
		return "passport-cert.pub"
	}
	return id + "-cert.pub"
}
