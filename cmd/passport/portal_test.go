package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	labbrowser "github.com/passport-access/terraform-provider-passport/internal/lab/browser"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
	"github.com/passport-access/terraform-provider-passport/internal/service"
)

// The portal's story, in Chromium, as the issue tells it: alice asks for
// staging, sees it granted, connects with the commands the page shows,
// extends and ends it; she asks for production and sees it wait; bob's
// approval queue does not show it; carol approves it and alice's request
// goes live. Screenshots of every page are kept (the log names where).

// portalPolicy is the lab's policy and the story: operators reach
// production once an administrator approves.
const portalPolicy = `
@id("ops-production-approved")
@approvals("1")
permit (principal in Passport::Group::"ops", action == Passport::Action::"access", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "production" && context.duration <= 4 * 3600 };
`

func TestThePortalStory(t *testing.T) {
	b, err := labbrowser.Find()
	if err != nil {
		t.Skipf("the portal's story needs a real browser, and there is none here: %v (scripts/install.sh installs Chromium and playwright-core)", err)
	}
	recordings := t.TempDir()
	sl := startServiceLab(t, lab.Options{Hosts: 2, Policy: lab.Policy() + portalPolicy},
		func(s *service.Settings) { s.Recordings = recording.Dir(recordings) })
	staging, production := sl.Hosts[0], sl.Hosts[1]
	shots, err := labbrowser.ArtifactDir("portal-story")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of every page: %s", shots)
	s, err := b.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	person := func(name string) *labbrowser.Person {
		return s.Person(t, name, sl.svc.URL, shots, labbrowser.PageOptions{})
	}

	// alice's own machine: her key, and the passport command on her PATH.
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", filepath.Join(home, ".ssh", "id_ed25519")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(filepath.Join(home, ".ssh", "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	shell := aliceShell(t, home, sl.svc.Token(t, "alice"))

	alice := person("alice")
	alice.SignIn("/requests/new")
	alice.Shot("01-new-request")

	// By tag: the page counts the targets and asks policy while she types.
	alice.Must(alice.Page.Fill("#tag_key_0", "Env"))
	alice.Must(alice.Page.Fill("#tag_value_0", "staging"))
	alice.Must(alice.Page.Fill("#reason", "INC-4242 disk full on web-1"))
	alice.Must(alice.Page.WaitFor("#decision", "Policy grants this at once"))
	if count := alice.Text("#count"); count != "1 target: 1 Linux" {
		t.Errorf("the live count: %q", count)
	}
	if allowed := alice.Text("#allowed"); !strings.Contains(allowed, "up to 2h at once, and up to 4h once someone approves") {
		t.Errorf("the windows policy allows: %q", allowed)
	}
	alice.Must(alice.Page.Select("#duration", "1h"))
	alice.Must(alice.Page.Fill("#public_key", string(pub)))
	alice.Shot("02-new-request-policy-answer")
	alice.Must(alice.Page.Click("#new-request button.primary"))
	alice.Must(alice.Page.WaitFor(".flash", "Access granted"))
	alice.Shot("03-request-granted")
	if state := alice.Text("#request .state"); state != "active" {
		t.Fatalf("alice's staging request is %q", state)
	}
	id := requestIDIn(t, alice.Text("h1"))
	username := alice.Text("#request code")

	// She connects with exactly the commands the page shows.
	var shown []string
	alice.Must(alice.Page.Eval(`Array.from(document.querySelectorAll('#connect .command code'), (e) => e.textContent)`, &shown))
	if len(shown) != 3 || shown[0] != "passport login --server "+sl.svc.URL || shown[2] != "passport ssh web-1" {
		t.Fatalf("the commands shown: %q", shown)
	}
	if out, err := shell(shown[1]); err != nil || !strings.Contains(out, "kept here, with your key "+filepath.Join(home, ".ssh", "id_ed25519")) {
		t.Fatalf("%s: %v\n%s", shown[1], err, out)
	}
	if out, err := shell(shown[2] + " id -un"); err != nil || strings.TrimSpace(out) != username {
		t.Fatalf("%s id -un: %v\n%s; want %s", shown[2], err, out, username)
	}
	// A second session, that prints a line later, for the player below.
	if out, err := shell(shown[2] + ` "id -un; sleep 0.5; echo cleaned /var/log for INC-4242"`); err != nil || !strings.Contains(out, "cleaned /var/log") {
		t.Fatalf("%s with a command: %v\n%s", shown[2], err, out)
	}
	// And the ssh_config it shows works for OpenSSH itself. (OpenSSH reads
	// ~ from the password file, not HOME, so the test spells it out.)
	config := strings.ReplaceAll(alice.Text("#ssh-config"), "~/", home+"/")
	if err := os.WriteFile(filepath.Join(home, "ssh_config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := shell("ssh -F ~/ssh_config web-1 id -un"); err != nil || strings.TrimSpace(out) != username {
		t.Fatalf("ssh -F with the page's ssh_config: %v\n%s\n%s", err, out, config)
	}
	cert := filepath.Join(home, "downloaded-cert.pub")
	name, err := alice.Page.Download("#certificate", cert)
	alice.Must(err)
	if got, _ := os.ReadFile(cert); name != id+"-cert.pub" || !bytes.HasPrefix(got, []byte("ssh-ed25519-cert-v01@openssh.com ")) {
		t.Errorf("the certificate download: %s, %.60q", name, got)
	}

	// Longer, then over.
	alice.Must(alice.Page.Select("#extend select", "2h"))
	alice.Must(alice.Page.Click("#extend button"))
	alice.Must(alice.Page.WaitFor(".flash", "The window was moved"))
	if window := alice.Text("#request .facts"); !strings.Contains(window, "2h") {
		t.Errorf("after extending: %q", window)
	}
	alice.Shot("04-request-extended")
	alice.Must(alice.Page.Click("#end button"))
	alice.Must(alice.Page.WaitFor(".flash", "The request was ended"))
	if state := alice.Text("#request .state"); state != "ended" {
		t.Errorf("after ending: %q", state)
	}
	alice.Shot("05-request-ended")
	if out := labtest.OnHost(t, staging, "id "+username+" 2>&1 || true"); !strings.Contains(out, "no such user") {
		t.Errorf("%s is still on web-1: %s", username, out)
	}

	// Production, by name: it waits for an administrator.
	alice.Open("/requests/new")
	alice.Must(alice.Page.Check("#by-name"))
	alice.Must(alice.Page.Check("#t-" + production.Info().InstanceID))
	alice.Must(alice.Page.Fill("#reason", "INC-4243 database failover"))
	alice.Must(alice.Page.WaitFor("#decision", "once 1 person approves by a member of admins"))
	alice.Shot("06-new-request-needs-approval")
	alice.Must(alice.Page.Click("#new-request button.primary"))
	alice.Must(alice.Page.WaitFor(".flash", "waits for approval"))
	waiting := requestIDIn(t, alice.Text("h1"))
	if w := alice.Text("#request .waiting"); !strings.Contains(w, "1 approval more from group:admins") {
		t.Errorf("what it waits for: %q", w)
	}
	alice.Shot("07-request-pending")

	bob := person("bob")
	bob.SignIn("/approvals")
	if q := bob.Text("main"); strings.Contains(q, waiting) || !strings.Contains(q, "Nothing waits for you") {
		t.Errorf("bob's queue: %q", q)
	}
	bob.Shot("08-approvals-bob")

	carol := person("carol")
	carol.SignIn("/approvals")
	card := "#wait-" + waiting
	if c := carol.Text(card); !strings.Contains(c, "alice (ops)") || !strings.Contains(c, "INC-4243 database failover") || !strings.Contains(c, "web-2") {
		t.Errorf("carol's queue: %q", c)
	}
	carol.Shot("09-approvals-carol")
	carol.Must(carol.Page.Fill(card+" textarea", "INC-4243 is real, go"))
	carol.Must(carol.Page.Click(card + " button[value=approve]"))
	carol.Must(carol.Page.WaitFor(".flash", "Your approval was recorded"))
	carol.Shot("10-approvals-carol-approved")

	alice.Open("/requests/" + waiting)
	if state := alice.Text("#request .state"); state != "active" {
		t.Fatalf("after carol's approval alice's production request is %q", state)
	}
	if a := alice.Text("#request"); !strings.Contains(a, "carol") || !strings.Contains(a, "INC-4243 is real, go") {
		t.Errorf("the approval on alice's request: %q", a)
	}
	alice.Shot("11-request-approved")
	alice.Open("/requests")
	alice.Shot("12-my-requests")

	// The trail, as the administrator sees it, with the service's check.
	carol.Open("/audit?request=" + waiting)
	if chain := carol.Text("#chain"); !strings.HasPrefix(chain, "Intact") {
		t.Errorf("the chain: %q", chain)
	}
	if events := carol.Text("#events"); !strings.Contains(events, "approved") || !strings.Contains(events, "provisioned") {
		t.Errorf("the request's events: %q", events)
	}
	carol.Shot("13-audit")
	carol.Open("/audit")
	var checked int64
	fmt.Sscanf(strings.TrimPrefix(carol.Text("#chain"), "Intact: the service checked all "), "%d", &checked)
	export := filepath.Join(t.TempDir(), "trail.jsonl")
	_, err = carol.Page.Download("#export-json", export)
	carol.Must(err)
	f, err := os.Open(export)
	if err != nil {
		t.Fatal(err)
	}
	last, err := ledger.VerifyExport(f)
	f.Close()
	if err != nil || checked == 0 || last.Seq != checked {
		t.Errorf("the whole trail carol exported: %v (last event %d; the service checked %d)", err, last.Seq, checked)
	}
	// The same trail as CSV, for a spreadsheet: a header, then a row an
	// event.
	sheet := filepath.Join(t.TempDir(), "trail.csv")
	_, err = carol.Page.Download("#export-csv", sheet)
	carol.Must(err)
	f, err = os.Open(sheet)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != int(checked)+1 || strings.Join(rows[0], ",") != "seq,time,actor,action,request,target,subject,detail,prev_hash,hash" ||
		rows[len(rows)-1][0] != strconv.FormatInt(checked, 10) {
		t.Errorf("the CSV carol exported: %d rows, %v; want a header and %d events", len(rows), err, checked)
	}

	// The sessions alice's connections left on web-1, collected as the
	// service's collection would, are carol's to find, search and play.
	labtest.CollectRecordings(t, staging, username, filepath.Join(recordings, id, staging.Info().InstanceID))
	carol.Open("/sessions?request=" + id)
	var sessions []string
	carol.Must(carol.Page.Eval(`Array.from(document.querySelectorAll('#recordings a[href^="/sessions/ar-"]'), (a) => a.getAttribute('href'))`, &sessions))
	if len(sessions) != 3 || !strings.Contains(carol.Text("#recordings"), username) {
		t.Errorf("carol's recordings of %s: %q; want alice's 3 sessions as %s", id, sessions, username)
	}
	carol.Shot("14-sessions")
	carol.Must(carol.Page.Fill("#pattern", "cleaned .* INC-[0-9]+"))
	carol.Must(carol.Page.Click("#find-heading ~ .actions button"))
	carol.Must(carol.Page.WaitFor("#matches-count", "1 line in 3 recordings"))
	carol.Shot("15-sessions-search")
	carol.Must(carol.Page.Click("#matches a"))
	carol.Must(carol.Page.WaitFor("#player-heading", ""))
	// Play hides what the session printed and shows it again line by
	// line: the first at once, the second half a second of the session
	// later.
	var atOnce int
	carol.Must(carol.Page.Eval(`(() => { document.getElementById('play').click(); return document.querySelectorAll('#transcript .line:not([hidden])').length; })()`, &atOnce))
	carol.Must(carol.Page.WaitFor("#player-clock", "the end"))
	if played := carol.Text("#transcript"); atOnce >= 2 || !strings.Contains(played, username) || !strings.Contains(played, "cleaned /var/log for INC-4242") {
		t.Errorf("the player showed %d lines at once, then %q", atOnce, played)
	}
	carol.Shot("16-session-played")
	cast := filepath.Join(t.TempDir(), "session.cast")
	_, err = carol.Page.Download("#download-cast", cast)
	carol.Must(err)
	if b, err := os.ReadFile(cast); err != nil || !bytes.HasPrefix(b, []byte(`{"version":2`)) || !bytes.Contains(b, []byte("cleaned /var/log")) {
		t.Errorf("the asciicast carol downloaded: %v %.80q", err, b)
	}
	// bob may not view alice's requests, nor their sessions.
	bob.Open("/sessions")
	if got := bob.Text("main"); strings.Contains(got, id) || !strings.Contains(got, "No recording that you may see") {
		t.Errorf("bob's sessions: %q", got)
	}

	// Admin: every live grant; carol ends alice's.
	carol.Open("/admin")
	if live := carol.Text("#live-" + waiting); !strings.Contains(live, "alice") {
		t.Errorf("the admin page: %q", live)
	}
	carol.Shot("17-admin")
	carol.Must(carol.Page.Click("#live-" + waiting + " button"))
	carol.Must(carol.Page.WaitFor(".flash", "The request was ended"))
	carol.Shot("18-admin-ended")

	alice.Must(alice.Page.Click("text=Sign out"))
	alice.Must(alice.Page.WaitFor("h1", "Signed out"))
	alice.Shot("19-signed-out")
	// Nothing secret ever stood in an address the browser went to.
	for _, p := range []*labbrowser.Person{alice, bob, carol} {
		events, err := p.Page.Events()
		p.Must(err)
		for _, e := range events {
			if strings.HasPrefix(e, "navigated: ") && regexp.MustCompile(`ppt_|ppc_|SAMLResponse|token=`).MatchString(e) {
				t.Errorf("%s's browser went to %s", p.Name, e)
			}
			if strings.HasPrefix(e, "csp: ") || strings.HasPrefix(e, "error: ") {
				t.Errorf("%s's page: %s", p.Name, e)
			}
		}
	}
}

// aliceShell runs a command line as alice at her own machine: her home
// (her key, her passport config), the passport command on her PATH, and
// her sign-in to the service.
func aliceShell(t *testing.T, home, token string) func(line string) (string, error) {
	t.Helper()
	bin := t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\nPASSPORT_RUN_MAIN=1 exec %q \"$@\"\n", os.Args[0])
	if err := os.WriteFile(filepath.Join(bin, "passport"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return func(line string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Env = append(os.Environ(), "HOME="+home, "PATH="+bin+":"+os.Getenv("PATH"), "PASSPORT_TOKEN="+token,
			"PASSPORT_CONFIG_DIR=", "XDG_CONFIG_HOME=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			return stdout.String() + stderr.String(), err
		}
		return stdout.String(), nil
	}
}

var reAnyRequestID = regexp.MustCompile(`ar-[0-9a-f]{16}`)

func requestIDIn(t *testing.T, s string) string {
	t.Helper()
	id := reAnyRequestID.FindString(s)
	if id == "" {
		t.Fatalf("no request id in %q", s)
	}
	return id
}
