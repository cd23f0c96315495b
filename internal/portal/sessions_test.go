package portal_test

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab/browser"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// bothCatalogs is where the rig's service finds recordings: in the
// directory where tests put sessions they collect from a host by hand
// (labtest.CollectRecordings), and in the lab's bucket, where the service
// collects them itself when a request ends, and from where it can delete
// them. It counts how often the service opens each one.
type bothCatalogs struct {
	dir    recording.Dir
	mu     sync.Mutex
	bucket recording.Catalog
	opened map[string]int
}

// useBucket adds the bucket, once the service that indexes it is up.
func (c *bothCatalogs) useBucket(b recording.Catalog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bucket = b
}

// opens is how often the service has opened the recording id.
func (c *bothCatalogs) opens(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened[id]
}

func (c *bothCatalogs) List(ctx context.Context, q recording.Query) ([]recording.Ref, error) {
	c.mu.Lock()
	b := c.bucket
	c.mu.Unlock()
	refs, err := c.dir.List(ctx, q)
	if err != nil || b == nil {
		return refs, err
	}
	kept, err := b.List(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		if !slices.ContainsFunc(kept, func(k recording.Ref) bool { return k.ID() == r.ID() }) {
			kept = append(kept, r)
		}
	}
	slices.SortStableFunc(kept, func(a, b recording.Ref) int { return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.ID(), b.ID())) })
	return kept, nil
}

func (c *bothCatalogs) Open(ctx context.Context, r recording.Ref) (*recording.Log, error) {
	c.mu.Lock()
	c.opened[r.ID()]++
	b := c.bucket
	c.mu.Unlock()
	if b != nil {
		if l, err := b.Open(ctx, r); !errors.Is(err, recording.ErrNotFound) {
			return l, err
		}
	}
	return c.dir.Open(ctx, r)
}

// A recording the service collected when alice's request ended: its page
// reads it once for what it printed and what was typed; alice, recorded
// in it, may not delete it (policy lets nobody delete their own), nor
// may another site's form; a deletion without a reason is refused before
// it reaches the service; carol (admins) deletes it with a reason, and
// the audit trail keeps who and why.
func deletingARecording(t *testing.T, r *rig) {
	ctx := context.Background()
	h := r.lab.Hosts[0]
	web1 := h.Info().InstanceID
	alice, carol := r.client(t, "alice"), r.client(t, "carol")
	key, err := sshca.NewUserKey()
	if err != nil {
		t.Fatal(err)
	}
	req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{web1}, Reason: "INC-21 a password was pasted", PublicKey: key.Line}, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(key.PrivatePEM))
	if err != nil {
		t.Fatal(err)
	}
	labtest.Converse(t, h, req.Username, labtest.CertSigner(t, signer, req.Certificate), [2]string{"$ ", "echo typed-$((6*7))\r"}, [2]string{"typed-42", "exit\r"})
	if ended, err := alice.End(ctx, req.ID); err != nil || ended.State != "revoked" {
		t.Fatalf("ending alice's request: %+v, %v", ended, err)
	}
	recs, err := alice.Recordings(ctx, client.RecordingFilter{Request: req.ID})
	if err != nil || len(recs) != 1 {
		t.Fatalf("alice's recordings of %s: %+v, %v; want the session the service collected", req.ID, recs, err)
	}
	id, row := recs[0].ID, "#rec-"+recs[0].Session
	// The service says who may delete it: carol (admins), not alice.
	for who, want := range map[*client.Client]bool{carol: true, alice: false} {
		if one, err := who.Recording(ctx, id); err != nil || one.Detail == nil || one.Detail.CallerMayDelete != want {
			t.Errorf("a read of %s: %+v, %v; want caller_may_delete %v", id, one.Detail, err, want)
		}
	}
	still := func(when string) {
		t.Helper()
		if _, err := carol.Recording(ctx, id); err != nil {
			t.Errorf("%s: the recording is gone from the API: %v", when, err)
		}
	}

	// The page reads the recording twice: once to describe it, once as
	// the asciicast it splits into what was printed and what was typed.
	a := r.person(t, "alice", browser.PageOptions{})
	before := r.catalog.opens(id)
	a.Open("/sessions/" + id)
	if n := r.catalog.opens(id) - before; n != 2 {
		t.Errorf("one view of the recording's page opened it %d times; want 2 (its description, and its asciicast once)", n)
	}
	if printed, typed := a.Text("#transcript"), a.Text("#typed"); !strings.Contains(printed, "typed-42") || !strings.Contains(typed, "echo typed-$((6*7))") {
		t.Errorf("the page shows printed %q and typed %q; want the session's typed-42 and what alice typed", printed, typed)
	}

	// alice is offered no deletion: policy does not let her. Her own
	// form, posted anyway, is refused with policy's reason, and the
	// recording stays.
	if got := a.Text("#delete"); !strings.Contains(got, "Policy does not let you delete this recording") || strings.Contains(got, "Reason (required)") {
		t.Errorf("alice's page offers: %q; want no delete form, and why", got)
	}
	a.Shot("delete-recording-not-offered")
	refused := postForm(t, r.svc.URL+"/sessions/"+id+"/delete", r.svc.Token(t, "alice"), "", url.Values{"reason": {"INC-21 it holds my password"}})
	if refused.status != http.StatusForbidden || !strings.Contains(refused.body, "to delete recordings") || !strings.Contains(refused.body, "&#34;alice&#34;") {
		t.Errorf("alice's deletion, posted anyway: %d, %.300s; want 403 with policy's reason naming her", refused.status, refused.body)
	}
	still("after alice's refusal")

	// Another site's form, with carol's cookie: refused by the service's
	// protection against cross-site requests.
	if forged := postForm(t, r.svc.URL+"/sessions/"+id+"/delete", r.svc.Token(t, "carol"), "https://evil.example", url.Values{"reason": {"INC-21 forged"}}); forged.status != http.StatusForbidden {
		t.Errorf("a cross-site deletion: %d; want 403", forged.status)
	}
	still("after a cross-site deletion")

	// carol: a reason of spaces is none, and the portal says so itself.
	c := r.person(t, "carol", browser.PageOptions{})
	c.Open("/sessions/" + id)
	c.Must(c.Page.Fill("#reason", "   "))
	c.Must(c.Page.Click("#delete button"))
	c.Must(c.Page.WaitFor("#reason-error", "Say why this recording is deleted"))
	still("after a deletion without a reason")

	// With a reason it is deleted: gone from the list and the API, and on
	// the audit trail with carol's name and reason.
	c.Must(c.Page.Fill("#reason", "INC-21 a password was pasted into it"))
	c.Must(c.Page.Click("#delete button"))
	c.Must(c.Page.WaitFor(".flash", "Deleted recording "+id))
	c.Shot("delete-recording-done")
	if !hidden(t, c, row) {
		t.Errorf("the sessions list still shows %s after its deletion", id)
	}
	if _, err := carol.Recording(ctx, id); client.CodeOf(err) != api.CodeNotFound {
		t.Errorf("reading the deleted recording: %v; want not_found", err)
	}
	trail, err := carol.Audit(ctx, client.AuditFilter{Request: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(trail, func(e api.Event) bool {
		return e.Action == "recording-deleted" && e.Actor == "carol" && strings.HasPrefix(e.Detail, "INC-21 a password was pasted into it: ")
	}) {
		t.Errorf("the trail has no recording-deleted event by carol with her reason: %+v", trail)
	}
	for _, e := range trail {
		if e.Action == "recording-deleted" && !strings.HasPrefix(e.Detail, "INC-21 a password was pasted into it: ") {
			t.Errorf("a refused deletion reached the trail: %+v", e)
		}
	}
}

// posted is what the portal answered a form posted outside the browser.
type posted struct {
	status int
	body   string
}

// postForm posts form to the URL to with a person's session cookie, from
// another site's page when origin is set (as a browser says it), else as
// a client that is no browser.
func postForm(t *testing.T, to, token, origin string, form url.Values) posted {
	t.Helper()
	rq, err := http.NewRequest("POST", to, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		rq.Header.Set("Origin", origin)
		rq.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	rq.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: token})
	resp, err := http.DefaultClient.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return posted{status: resp.StatusCode, body: string(body)}
}
