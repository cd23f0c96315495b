package portal_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/service/servicetest"
)

// benchGrants is how many grants the benchmark's ledger holds.
const benchGrants = 1000

// scalePolicy lets the lab's people reach the model nodes (Env=scale),
// so that the grants the benchmark writes are ones policy would make and
// a reconciler pass would leave alone.
const scalePolicy = `
@id("bench-scale")
permit (principal, action == Passport::Action::"access", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "scale" };
`

// BenchmarkPortalPages loads each page of the portal, as a signed-in
// browser does (the HTML, over HTTP, with the session cookie), on a lab
// whose ledger holds 1,000 grants of five people with their audit
// events: a tenth active, a twentieth waiting for approval, the rest
// ended. Alternating with each page it makes the /v1 call the page is
// chiefly built on, so page/api says what the portal adds to the API.
// The target is 100 ms a page.
func BenchmarkPortalPages(b *testing.B) {
	l := labtest.Start(b, lab.Options{ModelNodes: 20, Policy: lab.Policy() + scalePolicy})
	recordings := b.TempDir()
	svc := servicetest.Start(b, l, func(s *service.Settings) {
		s.RatePerMinute = 1 << 24
		s.Reconcile = 24 * time.Hour
		s.Recordings = recording.Dir(recordings)
	})
	var nodes []string
	for _, m := range l.Models {
		nodes = append(nodes, m.Info().InstanceID)
	}
	mine, target, err := fillLedger(context.Background(), svc.Ledger, nodes)
	if err != nil {
		b.Fatal(err)
	}
	// A terminal session recorded on a host (the recording package's
	// own), as collection keeps it, under alice's request.
	session := mine + "/" + target + "/20261206-064656-PAwD9y"
	if err := os.CopyFS(filepath.Join(recordings, filepath.FromSlash(session)), os.DirFS("../recording/testdata/sudo-terminal")); err != nil {
		b.Fatal(err)
	}
	alice, carol := svc.Token(b, "alice"), svc.Token(b, "carol")
	for _, page := range []struct {
		name, path, api, token string
	}{
		{"new", "/requests/new", api.PathTargets, alice},
		{"requests", "/requests", api.PathRequests, alice},
		{"request", "/requests/" + mine, api.RequestPath(mine, ""), alice},
		{"approvals", "/approvals", api.PathRequests + "?all=true", carol},
		{"audit", "/audit", api.PathAudit + "?newest=500", carol},
		{"sessions", "/sessions", api.PathRecordings, alice},
		{"recording", "/sessions/" + session, api.PathRecordings + "/" + session + "/asciicast", alice},
		{"admin", "/admin", api.PathRequests + "?all=true", carol},
	} {
		b.Run(page.name, func(b *testing.B) {
			var pageTime, apiTime time.Duration
			for i := range b.N {
				// Alternate which goes first, so neither always meets a
				// service warmed (or tired) by the other.
				if i%2 == 0 {
					pageTime += fetch(b, svc.URL+page.path, page.token, true)
					apiTime += fetch(b, svc.URL+page.api, page.token, false)
				} else {
					apiTime += fetch(b, svc.URL+page.api, page.token, false)
					pageTime += fetch(b, svc.URL+page.path, page.token, true)
				}
			}
			b.ReportMetric(float64(pageTime.Microseconds())/1000/float64(b.N), "ms/page")
			b.ReportMetric(float64(apiTime.Microseconds())/1000/float64(b.N), "ms/api-call")
			b.ReportMetric(float64(pageTime)/float64(apiTime), "page/api")
		})
	}
}

// fetch GETs url with token, as the browser's cookie or as the CLI's
// bearer token, reads the whole answer and says how long it took.
func fetch(b *testing.B, url, token string, browser bool) time.Duration {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	if browser {
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: token})
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %s %v\n%.500s", url, resp.Status, err, body)
	}
	return took
}

// fillLedger writes benchGrants grants of the lab's five people on the
// model nodes, with the events the service would have recorded for each,
// and returns an active request of alice's and its first target.
func fillLedger(ctx context.Context, url string, nodes []string) (string, string, error) {
	led, err := ledger.Open(ctx, url, ledger.Options{})
	if err != nil {
		return "", "", err
	}
	defer led.Close()
	people := idp.DemoUsers()
	now := time.Now().UTC()
	var aliceActive, target string
	for i := range benchGrants {
		who := people[i%len(people)]
		issued := now.Add(-time.Duration(benchGrants-i) * time.Minute)
		g := ledger.Grant{
			ID: fmt.Sprintf("ar-%016x", 0xbe0000+i), Requester: who.Name, RequesterKind: "person", Groups: who.Groups,
			Reason: fmt.Sprintf("INC-%d disk full on model-%d", 1000+i, i%len(nodes)+1), Username: fmt.Sprintf("pp-bench%05d", i),
			PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7y9Qmx4bfW0rlT3Z0a2XJx3m8cXo3tX5O1v3c0N9hQ bench",
			IssuedAt:  issued, ExpiresAt: issued.Add(time.Hour), State: ledger.Revoked,
		}
		switch {
		case i%10 == 0:
			g.State, g.ExpiresAt = ledger.Active, now.Add(time.Hour)
		case i%20 == 5:
			g.State, g.ExpiresAt = ledger.Pending, now.Add(time.Hour)
			g.Approval = &ledger.Approval{Required: 1, Approvers: []string{"group:admins"}, Deadline: now.Add(time.Hour)}
		case i%3 == 0:
			g.State = ledger.Expired
		}
		for _, n := range []string{nodes[i%len(nodes)], nodes[(i+1)%len(nodes)]} {
			t := ledger.Target{InstanceID: n, Platform: "Linux", State: g.State}
			if g.State == ledger.Pending {
				t.State = ledger.Pending
			}
			g.Targets = append(g.Targets, t)
		}
		if _, err := led.Create(ctx, g); err != nil {
			return "", "", err
		}
		events := []ledger.Event{{Action: ledger.ActionRequested, Detail: g.Reason}}
		if g.State != ledger.Pending {
			events = append(events, ledger.Event{Action: ledger.ActionAuthorized})
			for _, t := range g.Targets {
				events = append(events, ledger.Event{Action: ledger.ActionProvisioned, Target: t.InstanceID})
			}
		}
		switch g.State {
		case ledger.Revoked:
			events = append(events, ledger.Event{Action: ledger.ActionRevoked})
		case ledger.Expired:
			events = append(events, ledger.Event{Action: ledger.ActionExpired})
		}
		for _, e := range events {
			e.Actor, e.GrantID, e.Subject = who.Name, g.ID, g.Username
			if _, err := led.Append(ctx, e); err != nil {
				return "", "", err
			}
		}
		if who.Name == "alice" && g.State == ledger.Active {
			aliceActive, target = g.ID, g.Targets[0].InstanceID
		}
	}
	return aliceActive, target, nil
}
