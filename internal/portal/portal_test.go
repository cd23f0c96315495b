package portal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/browser"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/service/servicetest"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// These tests drive the portal in Chromium on a lab with the Passport
// service, as people use it: signed in at the lab's IdP, pages read and
// forms filled like a person does. The lab's policy lets carol (admins)
// reach every host and see and end anyone's requests; alice (ops)
// staging. web-1 is staging, web-2 production.

// auditorsPolicy lets ivy (auditors) see every request, and approve none.
const auditorsPolicy = `
@id("auditors-view")
permit (principal in Passport::Group::"auditors", action == Passport::Action::"view", resource);
`

// mallory's name is markup: the IdP says it, the portal must show it. (A
// name with a space is refused by the access core: requesters are
// printable ASCII without spaces.)
const mallory = `mallory<svg/onload=window.__pwned=1>`

type rig struct {
	lab   *lab.Lab
	svc   *servicetest.Service
	b     *browser.Session
	shots string
	// recordings is where the service reads recordings that tests
	// collect from the hosts by hand: request/instance/session/. It reads
	// those it collects itself from the lab's bucket (catalog).
	recordings string
	catalog    *bothCatalogs
}

// TestThePortal drives every page on one lab, one service and one
// browser, as several people at once: each part is a subtest, and each
// person who signs in has a browser context of their own.
func TestThePortal(t *testing.T) {
	b, err := browser.Find()
	if err != nil {
		t.Skipf("the portal is judged in a real browser, and there is none here: %v (scripts/install.sh installs Chromium and playwright-core)", err)
	}
	people := append(idp.DemoUsers(), idp.User{Name: mallory, Password: "mallory-lab", Email: "mallory@lab.passport.test", Groups: []string{"admins"}},
		idp.User{Name: "ivy", Password: "ivy-lab", Email: "ivy@lab.passport.test", Groups: []string{"auditors"}})
	l := labtest.Start(t, lab.Options{Hosts: 2, People: people, Policy: lab.Policy() + auditorsPolicy})
	r := &rig{lab: l, recordings: t.TempDir()}
	r.catalog = &bothCatalogs{dir: recording.Dir(r.recordings), opened: map[string]int{}}
	r.svc = servicetest.Start(t, l, func(s *service.Settings) {
		s.Recordings = r.catalog
		s.RecordingsBucket, s.AWS.Endpoints.S3 = lab.RecordingsBucket, l.Endpoint
	})
	store, err := collect.NewStore(l.AWSConfig(), lab.RecordingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	r.catalog.useBucket(recording.Bucket{Index: r.svc.Service.Ledger, Get: store.GetObject})
	if r.shots, err = browser.ArtifactDir("portal"); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", r.shots)
	if r.b, err = b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.b.Close() })
	// The order matters where one part leaves requests the next one
	// sees: the sizes last, with requests of every kind about.
	for _, part := range []struct {
		name string
		run  func(*testing.T, *rig)
	}{
		{"MarkupIsText", markupIsText},
		{"SafeByConstruction", safeByConstruction},
		{"KeyboardAlone", keyboardAlone},
		{"ErrorsSayWhatToDo", errorsSayWhatToDo},
		{"BreakGlass", breakGlass},
		{"ApprovalsAreTheirsToDecide", approvalsAreTheirsToDecide},
		{"DeletingARecording", deletingARecording},
		{"UsableAtAnySize", usableAtAnySize},
	} {
		t.Run(part.name, func(t *testing.T) { part.run(t, r) })
	}
}

func (r *rig) person(t *testing.T, name string, o browser.PageOptions) *browser.Person {
	t.Helper()
	p := r.b.Person(t, name, r.svc.URL, r.shots, o)
	if name == mallory {
		// The IdP's password for mallory is her own.
		_, err := p.Page.Goto(r.svc.URL + "/requests")
		p.Must(err)
		p.Must(p.Page.SignIn(mallory, "mallory-lab"))
		p.Must(p.Page.WaitFor("#me", "mallory"))
		return p
	}
	p.SignIn("/requests")
	return p
}

// client is name's API client, with a token of their own.
func (r *rig) client(t *testing.T, name string) *client.Client {
	t.Helper()
	c, err := client.New(r.svc.URL, client.Options{Token: r.svc.Token(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// key is a public key a person brought (its private half is not needed:
// nobody logs in here).
func (r *rig) key(t *testing.T) string {
	t.Helper()
	k, err := sshca.NewUserKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.Line
}

// unharmed fails the test when the page ran anything it was handed: an
// element made from the markup, the flag its script would set, a dialog,
// an error, or a script the Content-Security-Policy had to stop (escaping,
// not the policy, must be what keeps it text).
func unharmed(t *testing.T, p *browser.Person, where string) {
	t.Helper()
	var made int
	p.Must(p.Page.Eval(`document.querySelectorAll('img[src="x"], svg[onload], script:not([src])').length`, &made))
	var flag any
	p.Must(p.Page.Eval(`window.__pwned === undefined ? null : String(window.__pwned)`, &flag))
	if made != 0 || flag != nil {
		t.Errorf("%s: the markup became part of the page (%d elements; window.__pwned=%v)", where, made, flag)
	}
	events, err := p.Page.Events()
	p.Must(err)
	for _, e := range events {
		if strings.HasPrefix(e, "dialog") || strings.HasPrefix(e, "error:") || strings.HasPrefix(e, "csp:") {
			t.Errorf("%s: %s", where, e)
		}
	}
}

// A reason, a tag value and a SAML name that are markup are shown as
// text on every page that shows them, and never run.
func markupIsText(t *testing.T, r *rig) {
	reason := `INC-6 <script>window.__pwned='reason'</script><img src=x onerror="window.__pwned='reason'">`
	web2 := r.lab.Hosts[1].Info().InstanceID

	m := r.person(t, mallory, browser.PageOptions{})
	unharmed(t, m, "mallory's sign-in")
	if who := m.Text("#me"); who != mallory {
		t.Errorf("the header names %q; want her name as it is", who)
	}
	// mallory asks, with a reason that is markup, in the form.
	m.Open("/requests/new")
	m.Must(m.Page.Check("#by-name"))
	m.Must(m.Page.Check("#t-" + web2))
	m.Must(m.Page.Fill("#reason", reason))
	key, err := sshca.NewUserKey()
	if err != nil {
		t.Fatal(err)
	}
	m.Must(m.Page.Fill("#public_key", key.Line))
	m.Must(m.Page.WaitFor("#decision", "Policy grants this at once"))
	m.Must(m.Page.Click("#new-request button.primary"))
	m.Must(m.Page.WaitFor(".flash", "Access granted"))
	if got := m.Text("#request .reason"); got != reason {
		t.Errorf("the request page shows the reason as %q", got)
	}
	m.Shot("markup-request")
	unharmed(t, m, "mallory's request")
	id := m.Text("#request .card-title a")
	for _, path := range []string{"/requests", "/admin", "/audit"} {
		m.Open(path)
		if !strings.Contains(m.Text("main"), `<script>window.__pwned='reason'</script>`) {
			t.Errorf("%s does not show the reason as text", path)
		}
		unharmed(t, m, "mallory's "+path)
	}

	// What a session printed is markup too: its recording shows it as
	// text, in the search and in the player.
	m.Open("/requests/" + id)
	username := m.Text("#request code")
	certFile := filepath.Join(t.TempDir(), "cert.pub")
	if _, err := m.Page.Download("#certificate", certFile); err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(key.PrivatePEM))
	if err != nil {
		t.Fatal(err)
	}
	printed := `<img src=x onerror="window.__pwned=2">`
	if out, err := labtest.Login(t, r.lab.Hosts[1], username, labtest.CertSigner(t, signer, string(cert)), "printf '%s\\n' '"+printed+"'"); err != nil || out != printed {
		t.Fatalf("mallory's session printed %q, %v", out, err)
	}
	labtest.CollectRecordings(t, r.lab.Hosts[1], username, filepath.Join(r.recordings, id, web2))
	m.Open("/sessions?request=" + id + "&pattern=" + url.QueryEscape("onerror"))
	if got := m.Text("#matches"); !strings.Contains(got, printed) {
		t.Errorf("the search does not show what the session printed as text: %q", got)
	}
	unharmed(t, m, "mallory's search of her sessions")
	m.Must(m.Page.Click("#matches a"))
	m.Must(m.Page.WaitFor("#transcript", printed))
	m.Must(m.Page.Click("#play"))
	m.Must(m.Page.WaitFor("#player-clock", "the end"))
	if got := m.Text("#transcript"); !strings.Contains(got, printed) {
		t.Errorf("the player shows %q; want what the session printed, as text", got)
	}
	m.Shot("markup-session")
	unharmed(t, m, "mallory's session in the player")

	// A Windows logon's Security events show as a table of text, not in
	// the player, and a command line that is markup stays text.
	events := filepath.Join(r.recordings, id, web2, "20261206-080000-3e7abc")
	if err := os.MkdirAll(events, 0o700); err != nil {
		t.Fatal(err)
	}
	commandLine := `cmd /c echo <img src=x onerror="window.__pwned=3">`
	lines := []map[string]any{
		{"time": "2026-12-06T08:00:00Z", "event_id": 4624, "logon_id": "0x3e7abc", "logon_type": 10, "source": "10.0.0.5"},
		{"time": "2026-12-06T08:00:05Z", "event_id": 4688, "logon_id": "0x3e7abc", "process": `C:\Windows\System32\cmd.exe`, "command_line": commandLine},
	}
	var jsonl []byte
	for _, l := range lines {
		b, _ := json.Marshal(l)
		jsonl = append(append(jsonl, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(events, "events.jsonl"), jsonl, 0o600); err != nil {
		t.Fatal(err)
	}
	m.Open("/sessions/" + id + "/" + web2 + "/20261206-080000-3e7abc")
	m.Must(m.Page.WaitFor("#events", "process started"))
	if got := m.Text("#events"); !strings.Contains(got, "logon (Remote Desktop)") || !strings.Contains(got, commandLine) {
		t.Errorf("the Windows events show %q; want the logon and the command line, as text", got)
	}
	m.Shot("markup-windows-events")
	unharmed(t, m, "mallory's Windows events")

	// carol sees mallory's name and reason on the admin page and in the
	// trail.
	c := r.person(t, "carol", browser.PageOptions{})
	for _, path := range []string{"/admin", "/audit"} {
		c.Open(path)
		if main := c.Text("main"); !strings.Contains(main, mallory) || !strings.Contains(main, `<img src=x onerror="window.__pwned='reason'">`) {
			t.Errorf("carol's %s does not show mallory's name and reason as text", path)
		}
		c.Shot("markup-carol" + strings.ReplaceAll(path, "/", "-"))
		unharmed(t, c, "carol's "+path)
	}

	// A tag value that is markup: the live answer, then the whole form
	// sent back.
	c.Open("/requests/new")
	tag := `"><img src=x onerror="window.__pwned='tag'">`
	c.Must(c.Page.Fill("#tag_key_0", "Env"))
	c.Must(c.Page.Fill("#tag_value_0", tag))
	c.Must(c.Page.WaitFor("#preview-problem", "no online Linux or Windows instance"))
	unharmed(t, c, "the live answer to a tag")
	c.Must(c.Page.Click("text=Check with policy"))
	c.Must(c.Page.WaitFor("#preview-problem", "no online Linux or Windows instance"))
	var value string
	c.Must(c.Page.Eval(`document.getElementById('tag_value_0').value`, &value))
	if value != tag {
		t.Errorf("the form gave the tag value back as %q", value)
	}
	c.Shot("markup-tag")
	unharmed(t, c, "the form sent back with a tag")
}

// The portal's answers carry a strict Content-Security-Policy, refuse to
// be framed, keep the session cookie from scripts, and refuse changes
// from another site.
func safeByConstruction(t *testing.T, r *rig) {
	ctx := context.Background()
	carol := r.client(t, "carol")
	web1 := r.lab.Hosts[0].Info().InstanceID
	req, err := carol.Create(ctx, api.CreateRequest{Targets: []string{web1}, Reason: "CHG-1 safety checks", PublicKey: r.key(t)}, "")
	if err != nil {
		t.Fatal(err)
	}

	// Every page's headers.
	token := r.svc.Token(t, "carol")
	for _, path := range []string{"/requests", "/requests/new", "/requests/" + req.ID, "/approvals", "/audit", "/admin"} {
		rq, _ := http.NewRequest("GET", r.svc.URL+path, nil)
		rq.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: token})
		resp, err := http.DefaultClient.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		switch {
		case resp.StatusCode != 200:
			t.Errorf("%s: %s", path, resp.Status)
		case !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self'"):
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		case h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer":
			t.Errorf("%s: headers %v", path, h)
		}
	}

	c := r.person(t, "carol", browser.PageOptions{})
	cookies, err := c.Page.Cookies()
	c.Must(err)
	var session *browser.Cookie
	for i := range cookies {
		if cookies[i].Name == api.SessionCookie {
			session = &cookies[i]
		}
	}
	if session == nil || !session.HTTPOnly || !session.Secure || session.SameSite != "Lax" || session.Path != "/" {
		t.Fatalf("the session cookie: %+v; want HttpOnly, Secure, SameSite=Lax", session)
	}
	var visible string
	c.Must(c.Page.Eval(`document.cookie`, &visible))
	if strings.Contains(visible, api.SessionCookie) {
		t.Errorf("a script reads the session cookie: %q", visible)
	}

	// Another site (localhost is another site than 127.0.0.1) frames the
	// portal and posts an "end" to it with a plain form.
	end := r.svc.URL + "/requests/" + req.ID + "/end"
	evil := evilSite(t, fmt.Sprintf(`<!doctype html><title>evil</title><iframe id="f" src="%s/requests"></iframe>
<form method="post" action="%s"><input type="hidden" name="back" value="/admin"><button id="go">win a prize</button></form>`, r.svc.URL, end))
	_, err = c.Page.Goto(evil)
	c.Must(err)
	c.Must(c.Page.WaitFor("#go", ""))
	var framed bool
	// The frame stays empty: Chromium refused to show the portal in it.
	c.Must(c.Page.Eval(`(() => { try { return !!document.getElementById('f').contentDocument?.querySelector('#me'); } catch (e) { return false; } })()`, &framed))
	events, err := c.Page.Events()
	c.Must(err)
	refused := false
	for _, e := range events {
		if strings.Contains(e, "frame-ancestors") || strings.Contains(e, "X-Frame-Options") {
			refused = true
		}
	}
	if framed || !refused {
		t.Errorf("the portal in another site's frame: shown %v, refused %v; events %q", framed, refused, events)
	}
	c.Must(c.Page.Click("#go"))
	c.Shot("safety-cross-site-post")
	if got, err := carol.Get(ctx, req.ID); err != nil || got.State != "active" {
		t.Errorf("after another site's form posted an end: %s, %v; want it still active", got.State, err)
	}
	// The same from the service's own page does end it: the refusal above
	// was the protection's.
	c.Open("/requests/" + req.ID)
	c.Must(c.Page.Click("#end button"))
	c.Must(c.Page.WaitFor(".flash", "The request was ended"))

	// And a cross-site POST the browser would not make, made by hand with
	// the cookie: refused by the service's CSRF protection.
	before, err := carol.List(ctx, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"by": {"name"}, "target": {web1}, "reason": {"CHG-2 forged"}, "public_key": {r.key(t)}}
	rq, _ := http.NewRequest("POST", r.svc.URL+"/requests", strings.NewReader(form.Encode()))
	rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rq.Header.Set("Origin", "https://evil.example")
	rq.Header.Set("Sec-Fetch-Site", "cross-site")
	rq.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: token})
	resp, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	after, _ := carol.List(ctx, client.ListOptions{})
	if resp.StatusCode != http.StatusForbidden || len(after) != len(before) {
		t.Errorf("a forged cross-site create: %s, and %d open requests (%d before); want 403 and none more", resp.Status, len(after), len(before))
	}
}

// evilSite serves page from another site than the service's: localhost,
// where the service is on 127.0.0.1.
func evilSite(t *testing.T, page string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://localhost:" + port + "/"
}

// tabTo presses Tab until the focus is on selector, as a person without a
// mouse moves through a page; it fails when the element cannot be reached
// that way, or when the focus on it cannot be seen.
func tabTo(t *testing.T, p *browser.Person, selector string) {
	t.Helper()
	for range 120 {
		p.Must(p.Page.Press("Tab"))
		var there bool
		p.Must(p.Page.Eval(fmt.Sprintf(`document.activeElement && document.activeElement.matches(%q)`, selector), &there))
		if !there {
			continue
		}
		var outline string
		p.Must(p.Page.Eval(`getComputedStyle(document.activeElement).outlineStyle`, &outline))
		if outline == "none" {
			t.Errorf("the focus on %s cannot be seen", selector)
		}
		return
	}
	t.Fatalf("%s cannot be reached with Tab", selector)
}

// Asking for access, and ending it, with the keyboard alone.
func keyboardAlone(t *testing.T, r *rig) {
	a := r.person(t, "alice", browser.PageOptions{})
	a.Open("/requests/new")
	a.Must(a.Page.Press("Tab"))
	if first := a.Text(":focus"); first != "Skip to content" {
		t.Errorf("the first Tab lands on %q; want the skip link", first)
	}
	tabTo(t, a, "#tag_key_0")
	a.Must(a.Page.Type("Env"))
	a.Must(a.Page.Press("Tab"))
	a.Must(a.Page.Type("staging"))
	tabTo(t, a, "#reason")
	a.Must(a.Page.Type("INC-7 the keyboard alone"))
	a.Must(a.Page.WaitFor("#decision", "Policy grants this at once"))
	tabTo(t, a, "#duration")
	a.Must(a.Page.Press("ArrowDown"))
	var window string
	a.Must(a.Page.Eval(`document.getElementById('duration').value`, &window))
	if window != "2h" {
		t.Errorf("ArrowDown on the window chose %q; want 2h", window)
	}
	tabTo(t, a, "#public_key")
	a.Must(a.Page.Type(r.key(t)))
	tabTo(t, a, "#new-request button.primary")
	a.Must(a.Page.Press("Enter"))
	a.Must(a.Page.WaitFor(".flash", "Access granted"))
	a.Shot("keyboard-granted")
	tabTo(t, a, "#end button")
	a.Must(a.Page.Press("Enter"))
	a.Must(a.Page.WaitFor(".flash", "The request was ended"))
	a.Shot("keyboard-ended")
}

// Every control has a label, and every page reads without scrolling
// sideways at 200% zoom and on a phone.
func usableAtAnySize(t *testing.T, r *rig) {
	ctx := context.Background()
	web1 := r.lab.Hosts[0].Info().InstanceID
	mine, err := r.client(t, "carol").Create(ctx, api.CreateRequest{Targets: []string{web1}, Reason: "CHG-3 look at every page", PublicKey: r.key(t)}, "")
	if err != nil {
		t.Fatal(err)
	}
	// bob's longer window waits for an operator or an administrator.
	if _, err := r.client(t, "bob").Create(ctx, api.CreateRequest{Targets: []string{web1}, Reason: "CHG-4 a longer deploy", Duration: "3h", PublicKey: r.key(t)}, ""); err != nil {
		t.Fatal(err)
	}
	// mallory's session (MarkupIsText) is the recording carol looks at.
	recs, err := r.client(t, "carol").Recordings(ctx, client.RecordingFilter{})
	if err != nil || len(recs) == 0 {
		t.Fatalf("carol's recordings: %d, %v; want mallory's session", len(recs), err)
	}
	pages := []string{"/requests/new", "/requests", "/requests/" + mine.ID, "/approvals", "/audit", "/sessions", "/sessions/" + recs[0].ID, "/admin"}
	for _, size := range []struct {
		name string
		o    browser.PageOptions
	}{
		{"desktop", browser.PageOptions{Width: 1280, Height: 900}},
		// 200% zoom of a 1280-pixel window: half the CSS pixels.
		{"zoom200", browser.PageOptions{Width: 640, Height: 450, Zoom: 2}},
		{"phone", browser.PageOptions{Width: 375, Height: 740, Zoom: 2}},
	} {
		c := r.person(t, "carol", size.o)
		for _, path := range pages {
			c.Open(path)
			var unlabelled []string
			c.Must(c.Page.Eval(`Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]'))
				.filter((el) => !(el.tagName === 'A' || el.tagName === 'BUTTON' ? el.textContent.trim()
					: Array.from(el.labels || []).map((l) => l.textContent.trim()).join('') || el.getAttribute('aria-label')))
				.map((el) => el.outerHTML.slice(0, 100))`, &unlabelled))
			if len(unlabelled) > 0 {
				t.Errorf("%s: controls without a label: %q", path, unlabelled)
			}
			var wide struct{ Page, Window int }
			c.Must(c.Page.Eval(`({Page: document.documentElement.scrollWidth, Window: window.innerWidth})`, &wide))
			if wide.Page > wide.Window {
				t.Errorf("%s at %s: the page is %d pixels wide in a %d-pixel window: it scrolls sideways", path, size.name, wide.Page, wide.Window)
			}
			c.Shot(size.name + strings.ReplaceAll(path, "/", "-"))
		}
	}
}

// Errors say what happened and what to do, beside the field at fault.
func errorsSayWhatToDo(t *testing.T, r *rig) {
	web2 := r.lab.Hosts[1].Info().InstanceID
	a := r.person(t, "alice", browser.PageOptions{})
	a.Open("/requests/new")
	a.Must(a.Page.Check("#by-name"))
	a.Must(a.Page.Check("#t-" + web2))
	a.Must(a.Page.Fill("#reason", "fix"))
	a.Must(a.Page.Fill("#public_key", r.key(t)))
	a.Must(a.Page.WaitFor("#reason-problem", "at least 10"))
	a.Must(a.Page.Click("#new-request button.primary"))
	a.Must(a.Page.WaitFor("#problem", "say why you need access in at least 10"))
	if e := a.Text("#reason-error"); !strings.Contains(e, "at least 10") {
		t.Errorf("beside the reason: %q", e)
	}
	var invalid string
	a.Must(a.Page.Eval(`document.getElementById('reason').getAttribute('aria-invalid')`, &invalid))
	if invalid != "true" {
		t.Error("the reason is not marked invalid")
	}
	// The link in the error goes to the field.
	a.Must(a.Page.Click("#problem a"))
	var focused bool
	a.Must(a.Page.Eval(`location.hash === '#reason'`, &focused))
	if !focused {
		t.Error("the error's link does not lead to the reason")
	}
	a.Shot("errors-reason")
	// Policy's refusal names the host and the policy.
	a.Must(a.Page.Fill("#reason", "INC-9 production is down"))
	a.Must(a.Page.WaitFor("#decision", "Policy denies this"))
	a.Must(a.Page.Click("#new-request button.primary"))
	a.Must(a.Page.WaitFor("#problem", "access denied by policy"))
	if p := a.Text("#problem"); !strings.Contains(p, web2) || !strings.Contains(p, "no policy") {
		t.Errorf("the refusal: %q", p)
	}
	a.Shot("errors-denied")
}

// dave (oncall) reaches production only once an administrator approves,
// or at once by breaking the glass: the form offers it only there, says
// policy's answer for it, and the grant owes a review that carol records
// on the admin page.
func breakGlass(t *testing.T, r *rig) {
	web1, web2 := r.lab.Hosts[0].Info().InstanceID, r.lab.Hosts[1].Info().InstanceID
	d := r.person(t, "dave", browser.PageOptions{})
	d.Open("/requests/new")
	d.Must(d.Page.Check("#by-name"))
	d.Must(d.Page.Check("#t-" + web1))
	d.Must(d.Page.Fill("#reason", "INC-11 the database is down"))
	d.Must(d.Page.Fill("#public_key", r.key(t)))
	d.Must(d.Page.WaitFor("#decision", "Policy denies this"))
	if !hidden(t, d, "#break-glass") {
		t.Errorf("break-glass is offered where policy does not offer it (staging)")
	}
	d.Must(d.Page.Click("#t-" + web1)) // untick it
	d.Must(d.Page.Check("#t-" + web2))
	d.Must(d.Page.WaitFor("#decision", "once 1 person approves"))
	d.Must(d.Page.WaitFor("#break-glass-offer", "if you break the glass"))
	if hidden(t, d, "#break-glass") {
		t.Fatal("break-glass is not offered where policy offers it (production)")
	}
	d.Shot("break-glass-offered")
	d.Must(d.Page.Check("#break_glass"))
	d.Must(d.Page.WaitFor("#decision", "Policy grants this at once"))
	d.Must(d.Page.WaitFor("#break-glass-note", "reviewed afterwards"))
	d.Must(d.Page.Click("#new-request button.primary"))
	d.Must(d.Page.WaitFor(".flash", "you broke the glass"))
	id := d.Text("#request .card-title a")
	if s := d.Text("#request .break-glass"); !strings.Contains(s, "owes a review by") {
		t.Errorf("dave's break-glass request says %q", s)
	}
	d.Shot("break-glass-granted")

	// carol reviews it from the admin page; dave cannot review his own.
	d.Open("/admin")
	if own := d.Text("#review-" + id); !strings.Contains(own, "Someone else reviews your own") {
		t.Errorf("dave's own break-glass on his admin page: %q", own)
	}
	c := r.person(t, "carol", browser.PageOptions{})
	c.Open("/admin")
	card := "#review-" + id
	if s := c.Text(card); !strings.Contains(s, "dave (oncall)") || !strings.Contains(s, "INC-11 the database is down") {
		t.Errorf("carol's unreviewed break-glass: %q", s)
	}
	c.Shot("break-glass-admin")
	c.Must(c.Page.Fill(card+" textarea", "INC-11 warranted: the primary was down"))
	c.Must(c.Page.Click(card + " button"))
	c.Must(c.Page.WaitFor(".flash", "Your review was recorded"))
	if !hidden(t, c, card) {
		t.Errorf("the reviewed grant is still listed as owing a review")
	}
	d.Open("/requests/" + id)
	if s := d.Text("#request .break-glass"); !strings.Contains(s, "reviewed by carol") || !strings.Contains(s, "warranted") {
		t.Errorf("after carol's review dave's request says %q", s)
	}
}

// hidden reports whether selector is hidden from the person.
func hidden(t *testing.T, p *browser.Person, selector string) bool {
	t.Helper()
	var h bool
	p.Must(p.Page.Eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !e || e.offsetParent === null; })()`, selector), &h))
	return h
}

// The approvals queue holds what the person may decide, as the service
// says: alice (ops) approves staging though she may not view others'
// requests; ivy (auditors) views everything and approves nothing, so
// bob's waiting request is on her admin page and not in her queue.
func approvalsAreTheirsToDecide(t *testing.T, r *rig) {
	web1 := r.lab.Hosts[0].Info().InstanceID
	waiting, err := r.client(t, "bob").Create(context.Background(), api.CreateRequest{Targets: []string{web1}, Reason: "CHG-12 a longer migration",
		Duration: "3h", PublicKey: r.key(t)}, "")
	if err != nil || waiting.State != "pending" {
		t.Fatalf("bob's 3h request: %+v, %v; want it pending", waiting, err)
	}
	card := "#wait-" + waiting.ID
	ivy := r.person(t, "ivy", browser.PageOptions{})
	ivy.Open("/admin")
	if got := ivy.Text("#live-" + waiting.ID); !strings.Contains(got, "Policy does not let you end it") {
		t.Errorf("ivy's admin page does not list bob's request as one she may not end: %q", got)
	}
	if !hidden(t, ivy, "#live-"+waiting.ID+" form") {
		t.Errorf("ivy's admin page offers to end bob's request, which policy does not let her")
	}
	ivy.Open("/approvals")
	if !hidden(t, ivy, card) {
		t.Errorf("ivy's queue offers her bob's request, which policy does not let her approve")
	}
	ivy.Shot("approvals-ivy")
	a := r.person(t, "alice", browser.PageOptions{})
	a.Open("/approvals")
	if got := a.Text(card); !strings.Contains(got, "bob (dev)") || !strings.Contains(got, "CHG-12 a longer migration") {
		t.Errorf("alice's queue: %q", got)
	}
	a.Must(a.Page.Click(card + " button[value=deny]"))
	a.Must(a.Page.WaitFor("#problem", "Say why you deny it"))
	a.Must(a.Page.Fill(card+" textarea", "CHG-12 is not approved yet"))
	a.Must(a.Page.Click(card + " button[value=deny]"))
	a.Must(a.Page.WaitFor(".flash", "Your denial was recorded"))
	a.Shot("approvals-alice-denied")
	if got, err := r.client(t, "bob").Get(context.Background(), waiting.ID); err != nil || got.State != "denied" {
		t.Errorf("bob's request after alice's denial: %+v, %v", got, err)
	}
}
