package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/notify"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// hooks receives a `passport serve`'s notifications on real loopback HTTP
// servers: a signed webhook, verified as the notifications guide tells
// receivers to, and a Slack incoming webhook.
type hooks struct {
	t        *testing.T
	secret   []byte
	mu       sync.Mutex
	refused  int            // webhook attempts answered 503 so far
	refuse   int            // how many to answer 503 first
	holdOn   string         // event type whose first delivery is held...
	cut      bool           // ...once
	held     chan struct{}  // ...signalled here...
	release  chan struct{}  // ...until this closes
	webhook  []notify.Event // in arrival order, repeats included
	slack    []map[string]any
	webSrv   *httptest.Server
	slackSrv *httptest.Server
	released sync.Once
}

func newHooks(t *testing.T, secret []byte) *hooks {
	h := &hooks{t: t, secret: secret, held: make(chan struct{}), release: make(chan struct{})}
	h.webSrv = httptest.NewServer(http.HandlerFunc(h.serveWebhook))
	h.slackSrv = httptest.NewServer(http.HandlerFunc(h.serveSlack))
	t.Cleanup(func() {
		h.once()
		h.webSrv.Close()
		h.slackSrv.Close()
	})
	return h
}

func (h *hooks) once() { h.released.Do(func() { close(h.release) }) }

func (h *hooks) serveWebhook(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := notify.Verify(h.secret, r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		h.t.Errorf("webhook: the signature does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e notify.Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || r.Header.Get("Idempotency-Key") != e.ID {
		h.t.Errorf("webhook: %v: %s (Idempotency-Key %q)", err, body, r.Header.Get("Idempotency-Key"))
	}
	h.mu.Lock()
	if h.refused < h.refuse {
		h.refused++
		h.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if e.Type == h.holdOn && !h.cut {
		// The service waits for this answer while the test kills it: the
		// event is not taken, as a receiver whose answer never arrived
		// cannot know it was, and must come again.
		h.cut = true
		h.mu.Unlock()
		close(h.held)
		<-h.release
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.webhook = append(h.webhook, e)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hooks) serveSlack(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		h.t.Errorf("slack: not JSON: %s", body)
	}
	text, _ := m["text"].(string)
	blocks, _ := m["blocks"].([]any)
	if text == "" || len(blocks) == 0 || !strings.HasPrefix(r.URL.Path, "/services/") {
		h.t.Errorf("slack: not an incoming-webhook message (text and blocks) at its path: %s", body)
	}
	h.mu.Lock()
	h.slack = append(h.slack, m)
	h.mu.Unlock()
	io.WriteString(w, "ok")
}

// firsts is the webhook's events without repeats, in arrival order, and
// the repeats.
func (h *hooks) firsts() (events []notify.Event, repeats int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range h.webhook {
		if seen[e.ID] {
			repeats++
			continue
		}
		seen[e.ID] = true
		events = append(events, e)
	}
	return events, repeats
}

func typesOf(es []notify.Event, request string) []string {
	var out []string
	for _, e := range es {
		if e.Request.ID == request {
			out = append(out, e.Type)
		}
	}
	return out
}

// TestNotificationsSurviveAKilledService runs `passport serve` with a
// webhook that refuses its first attempts and a Slack channel, kills it
// with SIGKILL while it waits for the webhook's answer, and starts it
// again on the same ledger: every event of every request arrives, each
// request's in the order it happened (the one cut off is sent again),
// every signature verifies, every Slack message is one, the metrics say
// what happened, and no secret reaches the log.
func TestNotificationsSurviveAKilledService(t *testing.T) {
	if testing.Short() {
		t.Skip("-short leaves it out: it builds the passport binary and runs passport serve as a process twice; the full run (scripts/test.sh) has it")
	}
	l := labtest.Start(t, lab.Options{Hosts: 2})
	ctx := context.Background()
	ca, err := sshca.CreateKMS(ctx, kms.NewFromConfig(l.AWSConfig()), sshca.Ed25519,
		sshca.KMSKeyOptions{Description: "notifications test CA", Tags: map[string]string{"passport:certificate-authority": "lab"}})
	if err != nil {
		t.Fatal(err)
	}
	bin := buildPassport(t)
	dir := t.TempDir()
	secret := "whsec-" + strings.Repeat("0123456789abcdef", 3)
	h := newHooks(t, []byte(secret))
	h.refuse, h.holdOn = 2, "expiring-soon"
	slackPath := "/services/T0000/B0000/slacksecretpath42"
	files := map[string]string{
		"secret": secret + "\n",
		"slack":  h.slackSrv.URL + slackPath + "\n",
		// A two-hour notice: a one-hour window is announced as ending
		// soon at the reconciler's first pass after it is granted.
		"notify.json": fmt.Sprintf(`{"expiry_notice": "2h", "retry_min": "300ms", "retry_max": "2s", "poll": "500ms", "lease": "3s",
  "sinks": [{"name": "siem", "type": "webhook", "url": %q, "secret_file": %q},
            {"name": "oncall", "type": "slack", "url_file": %q}]}`, h.webSrv.URL+"/passport", filepath.Join(dir, "secret"), filepath.Join(dir, "slack")),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := mln.Addr().String()
	mln.Close()
	args := []string{"--ledger", "sqlite://" + filepath.Join(dir, "ledger.db"), "--notify-config", filepath.Join(dir, "notify.json"), "--metrics-listen", metricsAddr}
	first := startServe(t, bin, l, addr, ca.KMSKeyID(), "service/n", args...)
	r := &rig{lab: l, url: first.url}
	dave, carol := r.signIn(t, "dave"), r.signIn(t, "carol")
	production := l.Hosts[1].Info().InstanceID
	in := api.CreateRequest{Targets: []string{production}, Reason: "INC-401 <!channel> queue stuck", Duration: "1h", PublicKey: newUserKey(t).line}

	waiting, err := dave.Create(ctx, in, "")
	if err != nil || waiting.State != "pending" {
		t.Fatalf("dave's production request: %+v, %v; want pending", waiting, err)
	}
	if _, err := carol.Approve(ctx, waiting.ID, "INC-401 is real"); err != nil {
		t.Fatal(err)
	}
	// The reconciler announces the window's end; the webhook holds that
	// delivery while the service is killed.
	select {
	case <-h.held:
	case <-time.After(2 * time.Minute):
		t.Fatal("the expiring-soon event did not reach the webhook in 2 minutes")
	}
	if err := syscall.Kill(-first.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	h.once()

	second := startServe(t, bin, l, addr, ca.KMSKeyID(), "service/n", args...)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		h.mu.Lock()
		for _, e := range h.webhook {
			t.Logf("webhook got %s %s", e.ID, e.Type)
		}
		t.Logf("slack got %d messages", len(h.slack))
		h.mu.Unlock()
		for _, r := range []*replica{first, second} {
			log, _ := os.ReadFile(r.log)
			t.Logf("log of %s:\n%s", r.url, log)
		}
	})
	if _, err := dave.End(ctx, waiting.ID); err != nil {
		t.Fatal(err)
	}
	in.BreakGlass = true
	glass, err := dave.Create(ctx, in, "")
	if err != nil || glass.State != "active" {
		t.Fatalf("dave's break-glass request: %+v, %v; want active at once", glass, err)
	}
	waitFor(t, time.Minute, "the break-glass window's expiring-soon event", func() bool {
		got, _ := h.firsts()
		return slices.Contains(typesOf(got, glass.ID), "expiring-soon")
	})
	if _, err := dave.End(ctx, glass.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Review(ctx, glass.ID, "INC-401 needed it"); err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{
		waiting.ID: {"approval-needed", "approved", "granted", "expiring-soon", "ended"},
		glass.ID:   {"break-glass", "granted", "expiring-soon", "ended", "reviewed"},
	}
	total := len(want[waiting.ID]) + len(want[glass.ID])
	waitFor(t, 2*time.Minute, "every event at the webhook and in Slack", func() bool {
		got, _ := h.firsts()
		h.mu.Lock()
		slack := len(h.slack)
		h.mu.Unlock()
		return len(got) >= total && slack >= total
	})
	got, repeats := h.firsts()
	for id, kinds := range want {
		if seen := typesOf(got, id); !slices.Equal(seen, kinds) {
			t.Errorf("request %s's events arrived as %v, want %v", id, seen, kinds)
		}
	}
	if repeats > 0 {
		t.Errorf("%d events arrived twice", repeats)
	}
	for _, e := range got {
		if e.Type == "approval-needed" && e.Command != "passport approve "+waiting.ID {
			t.Errorf("the approval-needed event's command is %q", e.Command)
		}
		if e.Type == "break-glass" && !e.Urgent {
			t.Errorf("the break-glass event is not urgent: %+v", e)
		}
	}
	h.mu.Lock()
	for _, m := range h.slack {
		if text, _ := m["text"].(string); strings.Contains(text, "<!channel>") {
			t.Errorf("Slack got the requester's <!channel> unescaped: %s", text)
		}
	}
	h.mu.Unlock()

	metrics := scrape(t, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{`passport_notifications_delivered_total{sink="siem"}`, `passport_notifications_backlog{sink="siem"} 0`,
		`passport_notifications_dead_lettered_total{sink="oncall"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("the metrics lack %s:\n%s", want, grepLines(metrics, "passport_notifications"))
		}
	}
	for _, r := range []*replica{first, second} {
		log, _ := os.ReadFile(r.log)
		for _, s := range []string{secret, "slacksecretpath42"} {
			if strings.Contains(string(log), s) {
				t.Errorf("the service's log carries a secret (%.8s…)", s)
			}
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	var body string
	waitFor(t, 30*time.Second, "the metrics to show the backlog drained", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `passport_notifications_backlog{sink="siem"} 0`) && strings.Contains(body, `passport_notifications_backlog{sink="oncall"} 0`)
	})
	return body
}

func grepLines(s, prefix string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
