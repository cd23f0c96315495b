// Package portal is the Passport service's web pages, served by
// `passport serve` at /: a person signed in through the service's SAML
// login asks for access, follows their requests and connects, approves
// others' requests, reads the audit trail and, where policy lets them,
// oversees every live grant.
//
// Every page is rendered on the server with html/template from answers of
// the service's own /v1 API, called in process with the person's token,
// exactly as the CLI calls it over HTTPS (internal/client). The portal
// holds no other way to the access core, so it can show or do nothing
// that the API would not show or do for that person. The browser's
// session is the service's cookie; the pages work without JavaScript,
// and a small script of the portal's own (no inline script: the
// Content-Security-Policy forbids it) only makes them livelier.
package portal

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// Config wires a Portal.
type Config struct {
	// API is the service's /v1 routes, behind nothing but themselves: the
	// portal calls them in process as the signed-in person. The edge
	// (limits, headers, CSRF protection) wraps the portal's own pages.
	API http.Handler
	// URL is where people reach the service: the base of the commands the
	// pages show.
	URL *url.URL
	Now func() time.Time
	Log *slog.Logger
}

// Portal serves the pages.
type Portal struct {
	cfg   Config
	api   *client.Client
	pages map[string]*template.Template
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New parses the pages and returns a Portal.
func New(cfg Config) (*Portal, error) {
	if cfg.API == nil || cfg.URL == nil {
		return nil, errors.New("portal: Config.API and Config.URL are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	// The client's base is never dialled: the transport hands every call
	// to the handler. Loopback keeps client.New's rule against plain HTTP
	// elsewhere satisfied without pretending to a host.
	c, err := client.New("http://127.0.0.1", client.Options{HTTP: &http.Client{Transport: inProcess{cfg.API},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: cfg, api: c, pages: map[string]*template.Template{}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p, nil
}

// Route is one of the portal's routes: a ServeMux pattern and its handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes lists the portal's routes, for the service to serve beside its
// API behind the same edge.
func (p *Portal) Routes() []Route {
	static, _ := fs.Sub(staticFS, "static")
	return []Route{
		{"GET /{$}", http.RedirectHandler("/requests", http.StatusSeeOther)},
		{"GET /static/", http.StripPrefix("/static/", staticFiles(static))},
		{"POST /signout", http.HandlerFunc(p.signOut)},
		{"GET /requests/new", p.page(p.newRequest)},
		{"POST /requests/new/preview", p.page(p.previewRequest)},
		{"POST /requests", p.page(p.createRequest)},
		{"GET /requests", p.page(p.myRequests)},
		{"GET /requests/{id}", p.page(p.showRequest)},
		{"GET /requests/{id}/certificate", p.page(p.certificate)},
		{"POST /requests/{id}/extend", p.page(p.extendRequest)},
		{"POST /requests/{id}/end", p.page(p.endRequest)},
		{"GET /approvals", p.page(p.approvals)},
		{"POST /approvals/{id}", p.page(p.decide)},
		{"GET /audit", p.page(p.audit)},
		{"GET /audit/export", p.page(p.auditExport)},
		{"GET /sessions", p.page(p.sessions)},
		{"GET /sessions/{request}/{target}/{session}", p.page(p.showRecording)},
		{"GET /sessions/{request}/{target}/{session}/asciicast", p.page(p.recordingCast)},
		{"POST /sessions/{request}/{target}/{session}/delete", p.page(p.deleteRecording)},
		{"GET /admin", p.page(p.admin)},
		{"POST /admin/review/{id}", p.page(p.review)},
	}
}

// contentPolicy lets the pages load the portal's own stylesheet and
// script, and the script call the portal and the API on this origin;
// nothing else, no inline script or style, no frames.
const contentPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// staticFiles serves the embedded stylesheet and script.
func staticFiles(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// visit is one page view by a signed-in person.
type visit struct {
	w   http.ResponseWriter
	r   *http.Request
	api *client.Client
	me  api.Principal
}

// page serves h to signed-in people: the service's cookie carries their
// token, and the API says who it stands for. Anyone else goes to the
// service's sign-in and comes back here.
func (p *Portal) page(h func(*visit) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentPolicy)
		c, err := r.Cookie(api.SessionCookie)
		if err != nil || c.Value == "" {
			p.toSignIn(w, r)
			return
		}
		v := &visit{w: w, r: r, api: p.api.WithToken(c.Value)}
		v.me, err = v.api.WhoAmI(r.Context())
		if client.CodeOf(err) == api.CodeUnauthenticated {
			forget(w)
			p.toSignIn(w, r)
			return
		}
		if err == nil {
			err = h(v)
		}
		if err != nil {
			p.fail(v, err)
		}
	})
}

// toSignIn sends a browser to the service's SAML sign-in, to come back to
// the page it asked for. A change asked for without a sign-in is not
// made: the person is told, and signs in first.
func (p *Portal) toSignIn(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Path
	if r.Method != http.MethodGet {
		next = "/requests"
	}
	to := api.PathSAMLLogin + "?" + url.Values{"next": {next}}.Encode()
	if r.Method == http.MethodGet {
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	p.render(w, http.StatusUnauthorized, "signin", view{Title: "Sign in", Page: to})
}

// forget clears the browser's cookie once the service no longer takes it.
func forget(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
}

// signOut revokes the person's token at the service and clears the cookie.
func (p *Portal) signOut(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", contentPolicy)
	if c, err := r.Cookie(api.SessionCookie); err == nil && c.Value != "" {
		err := p.api.WithToken(c.Value).Logout(r.Context())
		if err != nil && client.CodeOf(err) != api.CodeUnauthenticated {
			p.render(w, http.StatusServiceUnavailable, "signin", view{Title: "Sign out", Problem: problemOf(err), Page: api.PathSAMLLogin + "?next=/requests"})
			return
		}
	}
	forget(w)
	p.render(w, http.StatusOK, "signedout", view{Title: "Signed out"})
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string // the current section
	Me      api.Principal
	Flash   string
	Problem *problem
	Page    any
}

// problem is an error as a page shows it: what happened, what to do, and
// which field it is about.
type problem struct {
	Message string
	Field   string
	Status  int
}

// problemOf turns an API error into words for the page. Every message the
// service sends already says what to do; a few codes get a first step.
func problemOf(err error) *problem {
	var e *api.Error
	if !errors.As(err, &e) {
		return &problem{Message: "The Passport service could not be reached from the portal: " + err.Error() + ". Try again shortly.", Status: http.StatusBadGateway}
	}
	msg := e.Message
	switch e.Code {
	case api.CodeUnauthenticated:
		msg = "Your sign-in has ended: sign in again. (" + msg + ")"
	case api.CodeRateLimited:
		msg = "Too many calls in a short time: wait a little and try again. (" + msg + ")"
	}
	status := e.Status
	if status == 0 {
		status = api.StatusOf(e.Code)
	}
	return &problem{Message: msg, Field: e.Field, Status: status}
}

// fail shows an error the page could not get past.
func (p *Portal) fail(v *visit, err error) {
	pr := problemOf(err)
	if pr.Status >= 500 {
		p.cfg.Log.Warn("portal page failed", "path", v.r.URL.Path, "error", err.Error())
	}
	p.render(v.w, pr.Status, "error", view{Title: "Something went wrong", Me: v.me, Problem: pr})
}

// render writes page name with data. It renders into a buffer first, so
// that a template that fails leaves no half page.
func (p *Portal) render(w http.ResponseWriter, status int, name string, data view) {
	var b bytes.Buffer
	if err := p.pages[name].ExecuteTemplate(&b, "layout", data); err != nil {
		p.cfg.Log.Error("rendering a portal page", "page", name, "error", err.Error())
		http.Error(w, "The page could not be shown; this has been logged.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// fragment writes one named template of page name alone, for the script
// that refreshes part of a page.
func (p *Portal) fragment(w http.ResponseWriter, name, block string, data view) {
	var b bytes.Buffer
	if err := p.pages[name].ExecuteTemplate(&b, block, data); err != nil {
		p.cfg.Log.Error("rendering a portal fragment", "page", name, "error", err.Error())
		http.Error(w, "The page could not be shown; this has been logged.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// parse reads every page: the layout with the page's own template.
func (p *Portal) parse() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	base := template.New("").Funcs(p.funcs())
	if _, err := base.ParseFS(templateFS, "templates/layout.html", "templates/parts.html"); err != nil {
		return err
	}
	for _, n := range names {
		name := n[len("templates/") : len(n)-len(".html")]
		if name == "layout" || name == "parts" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return fmt.Errorf("portal: page %s: %w", name, err)
		}
		p.pages[name] = t
	}
	return nil
}

// newKey is a fresh idempotency key for a form, so that a form sent twice
// (a double click, a reload) asks once.
func newKey() string { return "portal-" + rand.Text() }

// funcs are the templates' helpers. Every value still goes through
// html/template's escaping: these only choose words.
func (p *Portal) funcs() template.FuncMap {
	return template.FuncMap{
		"join":    strings.Join,
		"plural":  plural,
		"seconds": seconds,
		"inc":     func(i int) int { return i + 1 },
		"clock":   clock,
		"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"state":   stateWords,
		"event":   eventWords,
		// errFor is the problem's message when it is about field.
		"errFor": func(pr *problem, field string) string {
			if pr != nil && pr.Field == field {
				return pr.Message
			}
			return ""
		},
		"nav": func(current string) []navItem {
			items := []navItem{{"/requests/new", "New request", "new", false}, {"/requests", "My requests", "requests", false},
				{"/approvals", "Approvals", "approvals", false}, {"/audit", "Audit", "audit", false}, {"/sessions", "Sessions", "sessions", false}, {"/admin", "Admin", "admin", false}}
			for i := range items {
				items[i].Current = items[i].Section == current
			}
			return items
		},
	}
}

type navItem struct {
	Path, Label, Section string
	Current              bool
}

// stateWords says a request's or a target's state for people.
func stateWords(s string) string {
	switch s {
	case "pending":
		return "waiting for approval"
	case "provisioning":
		return "being granted"
	case "active":
		return "active"
	case "revoking":
		return "ending"
	case "revoked":
		return "ended"
	case "expired":
		return "expired"
	case "failed":
		return "failed"
	case "denied":
		return "denied"
	}
	return s
}
