package portal

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// auditRows is how many events the page shows, newest first; the exports
// carry every one.
const auditRows = 500

// auditFilter is the audit page's filter form, as typed.
type auditFilter struct {
	Request, Person, Target, Since, Until string
}

func readAuditFilter(q url.Values) auditFilter {
	return auditFilter{Request: strings.TrimSpace(q.Get("request")), Person: strings.TrimSpace(q.Get("person")), Target: strings.TrimSpace(q.Get("target")),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until"))}
}

// query is the filter as the export links carry it.
func (f auditFilter) query() string {
	q := url.Values{}
	for k, v := range map[string]string{"request": f.Request, "person": f.Person, "target": f.Target, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// timeLayouts are what the time fields take: a browser's datetime-local
// value (read as UTC, as the label says), or RFC 3339.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

func parseWhen(field, s string) (time.Time, *problem) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &problem{Message: field + " is not a time: write it like 2026-12-06T09:00 (UTC) or 2026-12-06T09:00:00Z.", Field: field, Status: http.StatusBadRequest}
}

func (f auditFilter) client() (client.AuditFilter, *problem) {
	out := client.AuditFilter{Request: f.Request, Person: f.Person, Target: f.Target}
	var pr *problem
	if out.Since, pr = parseWhen("since", f.Since); pr != nil {
		return out, pr
	}
	out.Until, pr = parseWhen("until", f.Until)
	return out, pr
}

type auditPage struct {
	Filter auditFilter
	Events []api.Event
	// Older says the service left out older events than those shown.
	Older    bool
	Verified *api.Verification
	// VerifyProblem is why the chain could not be checked.
	VerifyProblem string
	Query         string
}

// audit shows the trail the person may see, filtered, with the service's
// own verification of the whole chain.
func (p *Portal) audit(v *visit) error {
	f := readAuditFilter(v.r.URL.Query())
	page := auditPage{Filter: f, Query: f.query()}
	// The check of the whole chain reads every event, as the list does:
	// both at once.
	var checked sync.WaitGroup
	checked.Go(func() {
		if ver, err := v.api.Verify(v.r.Context()); err == nil {
			page.Verified = &ver
		} else {
			page.VerifyProblem = problemOf(err).Message
		}
	})
	cf, pr := f.client()
	if pr == nil {
		cf.Newest = auditRows
		list, err := v.api.AuditList(v.r.Context(), cf)
		if err != nil {
			pr = problemOf(err)
		}
		page.Events, page.Older = list.Events, list.Truncated
		slices.Reverse(page.Events)
	}
	checked.Wait()
	status := http.StatusOK
	if pr != nil {
		status = pr.Status
	}
	p.render(v.w, status, "audit", view{Title: "Audit trail", Nav: "audit", Me: v.me, Problem: pr, Page: page})
	return nil
}

// auditExport downloads the filtered trail: JSON lines in the form
// `passport audit export` writes (an unfiltered export of everything
// verifies on its own), or CSV for a spreadsheet.
func (p *Portal) auditExport(v *visit) error {
	q := v.r.URL.Query()
	format := q.Get("format")
	if format != "csv" && format != "json" {
		return &api.Error{Code: api.CodeInvalid, Status: http.StatusBadRequest, Field: "format", Message: "format must be csv or json: use the links on the audit page"}
	}
	cf, pr := readAuditFilter(q).client()
	if pr != nil {
		return &api.Error{Code: api.CodeInvalid, Status: pr.Status, Field: pr.Field, Message: pr.Message}
	}
	events, err := v.api.Audit(v.r.Context(), cf)
	if err != nil {
		return err
	}
	name := "passport-audit-" + p.cfg.Now().UTC().Format("20060102T150405Z")
	if format == "json" {
		v.w.Header().Set("Content-Type", "application/x-ndjson")
		v.w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
		enc := json.NewEncoder(v.w)
		for _, e := range events {
			enc.Encode(e)
		}
		return nil
	}
	v.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	v.w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	w := csv.NewWriter(v.w)
	w.Write([]string{"seq", "time", "actor", "action", "request", "target", "subject", "detail", "prev_hash", "hash"})
	for _, e := range events {
		w.Write([]string{strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), cell(e.Actor), cell(e.Action), cell(e.GrantID),
			cell(e.Target), cell(e.Subject), cell(e.Detail), e.PrevHash, e.Hash})
	}
	w.Flush()
	return w.Error()
}

// cell keeps a value a spreadsheet would run as a formula (it starts with
// =, +, -, @ or a control character) as text, with a leading quote: the
// trail's values come from requesters and hosts. The JSON export keeps
// every value exactly.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r\n", rune(s[0])) {
		return "'" + s
	}
	return s
}
