package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/ledger/dynamotest"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

// writeConfig writes a notifications file whose sinks are the given JSON
// objects, with the webhook secret in a file, and loads it.
func writeConfig(t *testing.T, extra string, sinks ...string) *Config {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"sinks": [%s]%s}`, strings.ReplaceAll(strings.Join(sinks, ","), "SECRET_FILE", secret), extra)
	path := filepath.Join(dir, "notify.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func webhookSink(name, url string) string {
	return fmt.Sprintf(`{"name": %q, "type": "webhook", "url": %q, "secret_file": "SECRET_FILE"}`, name, url)
}

func openLedger(t *testing.T, path string, c *clock.Fake) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), "sqlite://"+path, ledger.Options{Now: c.Now, Announce: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// life writes a request's life as the access core does: waits for one
// approval, is approved, granted, and ends.
func life(t *testing.T, l *ledger.Ledger, c *clock.Fake, id string) {
	t.Helper()
	ctx := context.Background()
	g, err := l.Create(ctx, ledger.Grant{ID: id, Requester: "alice", Reason: "INC-7 <!channel> & disk", State: ledger.Pending,
		IssuedAt: c.Now(), ExpiresAt: c.Now().Add(time.Hour), Targets: []ledger.Target{{InstanceID: "i-0123456789abcdef0", State: ledger.Pending}},
		Approval: &ledger.Approval{Required: 1, Approvers: []string{"group:admins"}, Deadline: c.Now().Add(30 * time.Minute)}, Cause: ledger.Cause{By: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	step := func(f func(g *ledger.Grant)) {
		t.Helper()
		f(&g)
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	step(func(g *ledger.Grant) {
		g.Approval.Given = []ledger.Vote{{By: "carol", At: c.Now(), Comment: "ok"}}
		g.State, g.Cause = ledger.Provisioning, ledger.Cause{By: "carol"}
	})
	step(func(g *ledger.Grant) { g.State, g.Targets[0].State = ledger.Active, ledger.Active })
	step(func(g *ledger.Grant) {
		g.State, g.Targets[0].State, g.Cause = ledger.Revoked, ledger.Revoked, ledger.Cause{By: "alice"}
	})
}

var lifeKinds = []string{"approval-needed", "approved", "granted", "ended"}

func types(es []Event, request string) []string {
	var out []string
	for _, e := range es {
		if e.Request.ID == request {
			out = append(out, e.Type)
		}
	}
	return out
}

// A receiver that fails the first attempts gets every event, once each
// beyond the failures, in the order they happened, each signed so that
// it verifies; the retries wait on the backoff, and the metrics say so.
func TestDeliveryRetriesInOrder(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), c)
	r := newReceiver(t, []byte(testSecret), c.Now)
	r.failFirst = 3
	cfg := writeConfig(t, `, "retry_min": "10s", "retry_max": "1m"`, webhookSink("siem", r.srv.URL))
	reg := prometheus.NewRegistry()
	d, err := New(l, cfg, Options{Holder: "service/a", Registry: reg, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	life(t, l, c, "ar-1")
	life(t, l, c, "ar-2")
	ctx := context.Background()
	for pass := 0; len(r.events()) < 8; pass++ {
		if pass > 20 {
			t.Fatalf("after 20 passes the receiver has %v", types(r.events(), "ar-1"))
		}
		if err := d.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		before := r.attempts
		if err := d.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if r.attempts != before && r.attempts <= r.failFirst+1 {
			t.Errorf("a pass before the retry was due sent again (attempt %d)", r.attempts)
		}
		c.Advance(time.Minute)
	}
	for _, id := range []string{"ar-1", "ar-2"} {
		if got := types(r.events(), id); !slices.Equal(got, lifeKinds) {
			t.Errorf("%s's events arrived as %v, want %v", id, got, lifeKinds)
		}
	}
	if got := value(t, d.metrics.delivered.WithLabelValues("siem")); got != 8 {
		t.Errorf("delivered metric %v, want 8", got)
	}
	if got := value(t, d.metrics.retried.WithLabelValues("siem")); got != 3 {
		t.Errorf("retried metric %v, want 3", got)
	}
	if got := value(t, d.metrics.pending.WithLabelValues("siem")); got != 0 {
		t.Errorf("backlog %v after everything was delivered", got)
	}
	if box, err := l.Outbox(ctx); err != nil || len(box) != 0 {
		t.Errorf("outbox after delivery: %d grants, %v", len(box), err)
	}
	i := slices.IndexFunc(r.events(), func(e Event) bool { return e.ID == "ar-1.1" })
	if i < 0 {
		t.Fatal("no event ar-1.1")
	}
	e := r.events()[i]
	if e.Type != "approval-needed" || e.Command != "passport approve ar-1" || !strings.Contains(e.Summary, "passport approve ar-1") || e.Approval.Required != 1 {
		t.Errorf("the approval-needed event: %+v", e)
	}
}

// A notice the receiver refuses for longer than the dead-letter time is
// given up on, counted, and the request's later events go on.
func TestDeadLetter(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), c)
	r := newReceiver(t, []byte(testSecret), c.Now)
	r.failKind = "approved"
	cfg := writeConfig(t, `, "retry_min": "1m", "retry_max": "10m", "dead_letter_after": "1h"`, webhookSink("siem", r.srv.URL))
	d, err := New(l, cfg, Options{Holder: "service/a", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	life(t, l, c, "ar-1")
	ctx := context.Background()
	for range 12 {
		if err := d.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		c.Advance(10 * time.Minute)
	}
	if got, want := types(r.events(), "ar-1"), []string{"approval-needed", "granted", "ended"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if got := value(t, d.metrics.dead.WithLabelValues("siem")); got != 1 {
		t.Errorf("dead-lettered metric %v, want 1", got)
	}
	g, err := l.Get(ctx, "ar-1")
	if err != nil || !slices.Equal(g.Delivery.Sinks["siem"].Dead, []int64{2}) {
		t.Errorf("the delivery record's dead letters: %+v, %v", g.Delivery.Sinks["siem"], err)
	}
	// The audit trail says so, once, naming the sink and the event.
	events, err := l.Events(ctx, ledger.Filter{GrantID: "ar-1"})
	if err != nil {
		t.Fatal(err)
	}
	var lost []ledger.Event
	for _, e := range events {
		if e.Action == ledger.ActionNotificationDeadLettered {
			lost = append(lost, e)
		}
	}
	if len(lost) != 1 || lost[0].Actor != "service/a" || !strings.Contains(lost[0].Detail, "approved notification") || !strings.Contains(lost[0].Detail, "to siem") ||
		strings.Contains(lost[0].Detail, r.srv.URL) {
		t.Errorf("dead-letter audit events: %+v", lost)
	}
	if err := l.Verify(ctx); err != nil {
		t.Errorf("the audit chain after the dead letter: %v", err)
	}
}

// Two replicas delivering from one ledger at once send each notice once:
// the delivery record's conditional write gives a request's notices to
// one. On sqlite (two handles on one file) and on a DynamoDB-compatible
// server whose conditional writes are atomic (dynalite).
func TestReplicasDeliverEachNoticeOnce(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		c := clock.NewFake(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
		path := filepath.Join(t.TempDir(), "ledger.db")
		replicasDeliverOnce(t, c, openLedger(t, path, c), openLedger(t, path, c))
	})
	t.Run("dynalite", func(t *testing.T) {
		c := clock.NewFake(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
		endpoint := dynamotest.Start(t, dynamotest.Dynalite)
		client := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")},
			func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
		open := func() *ledger.Ledger {
			l, err := ledger.Open(context.Background(), "dynamodb://passport-notify", ledger.Options{Now: c.Now, Announce: true,
				DynamoDB: ledger.DynamoDBOptions{Client: client, CreateTable: true}})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		replicasDeliverOnce(t, c, open(), open())
	})
}

func replicasDeliverOnce(t *testing.T, c *clock.Fake, la, lb *ledger.Ledger) {
	r := newReceiver(t, []byte(testSecret), c.Now)
	cfg := writeConfig(t, "", webhookSink("siem", r.srv.URL))
	da, err := New(la, cfg, Options{Holder: "service/a", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	db, err := New(lb, cfg, Options{Holder: "service/b", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	const requests = 12
	for i := range requests {
		life(t, la, c, fmt.Sprintf("ar-%02d", i))
	}
	ctx := context.Background()
	for range 3 {
		// The outbox index of a DynamoDB table is eventually consistent:
		// a pass may not see a grant yet, and a later one does.
		var wg sync.WaitGroup
		for _, d := range []*Deliverer{da, db} {
			wg.Go(func() {
				if err := d.Pass(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		c.Advance(2 * DefaultLease)
	}
	seen := map[string]int{}
	for _, e := range r.events() {
		seen[e.ID]++
	}
	for i := range requests {
		id := fmt.Sprintf("ar-%02d", i)
		if got := types(r.events(), id); !slices.Equal(got, lifeKinds) {
			t.Errorf("%s's events arrived as %v, want %v", id, got, lifeKinds)
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("event %s was delivered %d times", id, n)
		}
	}
}

// Slack gets an incoming-webhook message: text, and blocks Slack's Block
// Kit accepts (sections of mrkdwn within 3000 characters, a context), with
// what people wrote escaped so a reason cannot page a channel, and the
// approve command in a block of its own.
func TestSlackMessages(t *testing.T) {
	c := clock.NewFake(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), c)
	r := newReceiver(t, nil, c.Now)
	t.Setenv("TEST_SLACK_URL", r.srv.URL+"/services/T000/B000/XXXXXXXX")
	cfg := writeConfig(t, "", `{"name": "oncall", "type": "slack", "url_env": "TEST_SLACK_URL"}`)
	d, err := New(l, cfg, Options{Holder: "service/a", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	life(t, l, c, "ar-1")
	if err := d.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	bodies := r.bodies()
	if len(bodies) != len(lifeKinds) {
		t.Fatalf("Slack got %d messages, want %d", len(bodies), len(lifeKinds))
	}
	for i, b := range bodies {
		checkSlackMessage(t, b)
		if strings.Contains(string(b), "<!channel>") {
			t.Errorf("message %d passes a requester's <!channel> to Slack unescaped: %s", i, b)
		}
	}
	if !strings.Contains(string(bodies[0]), "```passport approve ar-1```") {
		t.Errorf("the approval-needed message has no approve command block: %s", bodies[0])
	}
}

// checkSlackMessage holds a body to the incoming-webhook format.
func checkSlackMessage(t *testing.T, body []byte) {
	t.Helper()
	var m struct {
		Text   *string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
			Elements []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not a Slack message: %v: %s", err, body)
	}
	if m.Text == nil || *m.Text == "" || len(*m.Text) > 3000 || len(m.Blocks) == 0 || len(m.Blocks) > 50 {
		t.Errorf("a Slack message needs text (at most 3000) and 1 to 50 blocks: %s", body)
	}
	for _, b := range m.Blocks {
		switch b.Type {
		case "section":
			if b.Text == nil || b.Text.Type != "mrkdwn" || b.Text.Text == "" || len([]rune(b.Text.Text)) > 3000 {
				t.Errorf("a section needs mrkdwn text of 1 to 3000 characters: %s", body)
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				t.Errorf("a context needs 1 to 10 elements: %s", body)
			}
			for _, e := range b.Elements {
				if e.Type != "mrkdwn" || e.Text == "" {
					t.Errorf("a context element needs mrkdwn text: %s", body)
				}
			}
		default:
			t.Errorf("block type %q: %s", b.Type, body)
		}
	}
}

// value reads a counter's or gauge's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// A sink limited to some events gets those, and break-glass always.
func TestSinkEvents(t *testing.T) {
	s := &sink{cfg: SinkConfig{Events: []string{"approval-needed"}}}
	for kind, want := range map[string]bool{"approval-needed": true, "break-glass": true, "granted": false, "ended": false} {
		if got := s.wants(kind); got != want {
			t.Errorf("a sink for approval-needed wants %s: %v, want %v", kind, got, want)
		}
	}
}
